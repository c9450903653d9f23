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
#include "gateway/line_file.h"

namespace aegis::gateway {

namespace {

constexpr std::uintmax_t kMaxFileBytes = 1024 * 1024;

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
            trim_blanks(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
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
    return replace_line_file(file, format_channel_controls(controls));
}

}  // namespace aegis::gateway
