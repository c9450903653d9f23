#pragma once
// Durations on the command line: "250ms", "10s", "5m", "1h", or a bare number of seconds ("1.5").

#include <chrono>
#include <string_view>

#include "core/result.h"

namespace aegis::cli {

// A positive duration; ExitCode::usage for anything else, naming `option` in the message.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view option);

}  // namespace aegis::cli
