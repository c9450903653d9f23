#pragma once
// Durations on the command line: "250ms", "10s", "5m", "1h", or a bare number of seconds ("1.5").

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::cli {

// A duration in [min, max]; ExitCode::usage for anything else, naming `option` and the range.
// "0" (with or without a unit) only when min is 0.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view option,
                                                               std::chrono::milliseconds min,
                                                               std::chrono::milliseconds max);

// The shortest way to write a duration with the units above: "250ms", "10s", "5m", "24h"; "0".
[[nodiscard]] std::string duration_text(std::chrono::milliseconds duration);

}  // namespace aegis::cli
