#pragma once
// The exit codes every Aegis tool uses (documented in man/aegis.7).

namespace aegis {

enum class ExitCode : int {
    ok = 0,           // success
    failure = 1,      // any failure not covered below
    usage = 2,        // bad option or argument
    unreachable = 3,  // cannot reach the broker (not running, no socket, no permission)
    refused = 4,      // refused by the peer (authentication, pinned key, access control, rejected)
    timeout = 5,      // timed out
    bad_input = 6,    // bad input data or file (key, config, channel name)
};

[[nodiscard]] constexpr int to_int(ExitCode code) {
    return static_cast<int>(code);
}

}  // namespace aegis
