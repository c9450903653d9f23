#pragma once
// The gateway's line-oriented files (the authorized file, the revocation list, the channel
// controls and the copies of what was applied): read whole, and refused whole when any line is
// bad, since skipping a line would change who may connect; written whole, never half.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace aegis::gateway {

// What separates the fields of a line.
inline constexpr std::string_view kBlanks = " \t\r";

// TEXT without the blanks at either end.
[[nodiscard]] std::string_view trim_blanks(std::string_view text);

// The text of FILE; ExitCode::bad_input "cannot read WHAT FILE: reason" when it is missing, a
// directory or unreadable.
[[nodiscard]] Result<std::string> read_line_file(const std::filesystem::path& file, std::string_view what);

// Replaces FILE with TEXT (mode 0600): written and synced beside it, renamed over it, the directory
// synced, so a crash leaves the old file or the new one. ExitCode::failure naming the step.
[[nodiscard]] Result<void> replace_line_file(const std::filesystem::path& file, std::string_view text);

// ExitCode::bad_input "WHAT FILE has N bad line(s), none applied: FILE:LINE: ...; ...".
[[nodiscard]] Error bad_lines_error(std::string_view what, std::string_view file,
                                    const std::vector<std::string>& problems);

}  // namespace aegis::gateway
