#pragma once
// The gateway's line-oriented files (the authorized file, the revocation list): read whole, and
// refused whole when any line is bad, since skipping a line would change who may connect.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace aegis::gateway {

// The text of FILE; ExitCode::bad_input "cannot read WHAT FILE: reason" when it is missing, a
// directory or unreadable.
[[nodiscard]] Result<std::string> read_line_file(const std::filesystem::path& file, std::string_view what);

// ExitCode::bad_input "WHAT FILE has N bad line(s), none applied: FILE:LINE: ...; ...".
[[nodiscard]] Error bad_lines_error(std::string_view what, std::string_view file,
                                    const std::vector<std::string>& problems);

}  // namespace aegis::gateway
