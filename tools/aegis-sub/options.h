#pragma once
// aegis-sub's command line, checked.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/message_format.h"
#include "cli/tool.h"
#include "core/result.h"

namespace aegis::sub {

struct Options {
    cli::CommonOptions common;  // --socket, --help, --version
    std::vector<std::string> patterns;
    std::optional<std::uint64_t> count;
    std::optional<std::chrono::milliseconds> wait;
    cli::OutputStyle style;
    std::string from;     // keep only messages signed by this fingerprint
    std::string durable;  // cursor name
    bool drain = false;
    bool reset = false;  // replace the cursor's stored patterns
    std::string exec;
    std::uint64_t jobs = 1;
    std::chrono::milliseconds exec_timeout{30'000};  // 0: none
};

[[nodiscard]] Result<Options> parse_options(int argc, char** argv);

}  // namespace aegis::sub
