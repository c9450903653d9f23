#include "gateway/line_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace aegis::gateway {

namespace {

Error io_error(std::string_view what, const std::filesystem::path& file) {
    return make_error(ExitCode::failure, "cannot {} {}: {}", what, file.string(), std::strerror(errno));
}

// Closes a descriptor on every path out.
struct Descriptor {
    int fd;
    ~Descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::string_view trim_blanks(std::string_view text) {
    const auto first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(kBlanks);
    return text.substr(first, last - first + 1);
}

Result<void> replace_line_file(const std::filesystem::path& file, std::string_view text) {
    auto temporary = file;
    temporary += ".tmp";
    {
        Descriptor out{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
        if (out.fd < 0) return io_error("create", temporary);
        std::size_t written = 0;
        while (written < text.size()) {
            const auto n = ::write(out.fd, text.data() + written, text.size() - written);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("write", temporary);
            written += static_cast<std::size_t>(n);
        }
        if (::fsync(out.fd) != 0) return io_error("sync", temporary);
    }
    if (::rename(temporary.c_str(), file.c_str()) != 0) return io_error("replace", file);
    auto directory = file.parent_path();
    if (directory.empty()) directory = ".";
    Descriptor dir{::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd < 0 || ::fsync(dir.fd) != 0) return io_error("sync the directory of", file);
    return {};
}

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
