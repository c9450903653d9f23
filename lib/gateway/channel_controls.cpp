#include "gateway/channel_controls.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "channel/channel.h"

namespace aegis::gateway {

namespace {

constexpr std::string_view kBlanks = " \t\r";
constexpr std::uintmax_t kMaxFileBytes = 1024 * 1024;

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(kBlanks);
    return text.substr(first, last - first + 1);
}

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

const std::string* ChannelControls::disabled_by(std::string_view channel) const {
    for (const auto& pattern : patterns_)
        if (channel::matches(pattern, channel)) return &pattern;
    return nullptr;
}

bool ChannelControls::disable(const std::string& pattern) {
    if (patterns_.size() >= kMaxChannelControls) return false;
    const auto at = std::lower_bound(patterns_.begin(), patterns_.end(), pattern);
    if (at != patterns_.end() && *at == pattern) return false;
    patterns_.insert(at, pattern);
    return true;
}

bool ChannelControls::enable(std::string_view pattern) {
    const auto at = std::lower_bound(patterns_.begin(), patterns_.end(), pattern);
    if (at == patterns_.end() || *at != pattern) return false;
    patterns_.erase(at);
    return true;
}

Result<ChannelControls> parse_channel_controls(std::string_view text, std::string_view name) {
    ChannelControls controls;
    std::size_t line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        const auto line =
            trim(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        start = end == std::string_view::npos ? text.size() : end + 1;
        ++line_number;
        if (line.empty() || line.front() == '#') continue;
        if (auto valid = channel::validate_pattern(line); !valid)
            return make_error(ExitCode::bad_input, "{}:{}: {}", name, line_number, valid.error().message);
        if (controls.size() >= kMaxChannelControls)
            return make_error(ExitCode::bad_input, "{}:{}: more than {} patterns", name, line_number,
                              kMaxChannelControls);
        controls.disable(std::string(line));  // a pattern listed twice counts once
    }
    return controls;
}

Result<ChannelControls> load_channel_controls(const std::filesystem::path& file) {
    std::error_code ec;
    const auto status = std::filesystem::status(file, ec);
    if (status.type() == std::filesystem::file_type::not_found) return ChannelControls{};
    if (ec) return make_error(ExitCode::bad_input, "cannot read channel controls {}: {}", file.string(), ec.message());
    if (!std::filesystem::is_regular_file(status))
        return make_error(ExitCode::bad_input, "cannot read channel controls {}: not a regular file", file.string());
    if (std::filesystem::file_size(file, ec) > kMaxFileBytes)
        return make_error(ExitCode::bad_input, "channel controls {} is over {} bytes", file.string(), kMaxFileBytes);
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return make_error(ExitCode::bad_input, "cannot read channel controls {}: {}", file.string(),
                          std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return parse_channel_controls(text.str(), file.string());
}

std::string format_channel_controls(const ChannelControls& controls) {
    std::string out = "# Channel patterns disabled at this gateway, one a line (aegis-gateway(1)).\n";
    for (const auto& pattern : controls.patterns()) out += pattern + '\n';
    return out;
}

Result<void> save_channel_controls(const std::filesystem::path& file, const ChannelControls& controls) {
    const auto text = format_channel_controls(controls);
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

}  // namespace aegis::gateway
