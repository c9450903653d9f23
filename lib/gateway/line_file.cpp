#include "gateway/line_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace aegis::gateway {

Result<std::string> read_line_file(const std::filesystem::path& file, std::string_view what) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        return make_error(ExitCode::bad_input, "cannot read {} {}: is a directory", what, file.string());
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error(ExitCode::bad_input, "cannot read {} {}: {}", what, file.string(), std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return make_error(ExitCode::bad_input, "cannot read {} {}", what, file.string());
    return text.str();
}

Error bad_lines_error(std::string_view what, std::string_view file, const std::vector<std::string>& problems) {
    return make_error(ExitCode::bad_input, "{} {} has {} bad line{}, none applied: {}", what, file, problems.size(),
                      problems.size() == 1 ? "" : "s", fmt::join(problems, "; "));
}

}  // namespace aegis::gateway
