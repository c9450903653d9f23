#pragma once
// aegis-stat's command line, parsed into a value (man aegis-stat(1)).

#include <optional>
#include <string>
#include <string_view>

#include "cli/status_report.h"
#include "cli/tool.h"

namespace aegis::stat {

inline constexpr std::string_view kTool = "aegis-stat";

struct Options {
    cli::CommonOptions common;  // --socket, --timeout, --help, --version
    bool json = false;
    bool prometheus = false;
    bool check = false;
    std::optional<std::string> watch;
    std::optional<std::string> fleet;
    cli::CheckThresholds thresholds;
};

// Throws boost::program_options::error for a bad command line.
[[nodiscard]] Options parse_options(int argc, char** argv);

// --check is on the command line: a usage error is then an UNKNOWN line, as monitoring plugins do.
[[nodiscard]] bool asks_check(int argc, char** argv);

}  // namespace aegis::stat
