#pragma once
// What an attack found: one line per check on stdout ("ok: ..." or "FAIL: ..."), and whether
// every check held. Figures go out as "measured: ..." lines for the test log.

#include <fmt/format.h>

#include <cstdio>
#include <string_view>

namespace aegis::attack {

class Report {
public:
    // Records one check; returns `held` so a caller can stop when a precondition failed.
    bool expect(bool held, std::string_view what) {
        std::fputs(fmt::format("{}: {}\n", held ? "ok" : "FAIL", what).c_str(), stdout);
        std::fflush(stdout);
        if (!held) failed_ = true;
        return held;
    }
    void measured(std::string_view what) {
        std::fputs(fmt::format("measured: {}\n", what).c_str(), stdout);
        std::fflush(stdout);
    }
    [[nodiscard]] int exit_code() const { return failed_ ? 1 : 0; }

private:
    bool failed_ = false;
};

}  // namespace aegis::attack
