#pragma once
// The channel patterns an operator disabled at the gateway (aegis-gateway(1) CHANNEL CONTROLS,
// PROTOCOL.md §7.1): a publish to a channel one of them matches is refused channel_disabled.
// The set is pure; the file functions below read and write the controls file, the gateway
// decides when.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace aegis::gateway {

// More patterns than this in one file or set are refused (each publish is matched against all).
inline constexpr std::size_t kMaxChannelControls = 1024;

class ChannelControls {
public:
    // The first disabled pattern that matches `channel`, or nullptr when publishing to it is allowed.
    [[nodiscard]] const std::string* disabled_by(std::string_view channel) const;
    // Adds a valid pattern; false when it is already there (or the set is full: check size()).
    bool disable(const std::string& pattern);
    // Removes a pattern as it was written; false when it is not there.
    bool enable(std::string_view pattern);
    [[nodiscard]] const std::vector<std::string>& patterns() const { return patterns_; }  // sorted
    [[nodiscard]] std::size_t size() const { return patterns_.size(); }
    [[nodiscard]] bool empty() const { return patterns_.empty(); }
    bool operator==(const ChannelControls& other) const { return patterns_ == other.patterns_; }

private:
    std::vector<std::string> patterns_;
};

// The file's text: one pattern a line; blank lines and lines starting with '#' are ignored;
// blanks around a pattern are trimmed. One bad line refuses the whole text (ExitCode::bad_input,
// "NAME:LINE: ..."), so a reload never applies half a file.
[[nodiscard]] Result<ChannelControls> parse_channel_controls(std::string_view text, std::string_view name);
// Reads the file; a missing file is an empty set.
[[nodiscard]] Result<ChannelControls> load_channel_controls(const std::filesystem::path& file);
// The text save_channel_controls writes: a comment line, then the patterns one a line.
[[nodiscard]] std::string format_channel_controls(const ChannelControls& controls);
// Replaces the file atomically (a temporary file beside it, fsync'd, renamed over it, the
// directory fsync'd), mode 0600. Comments of the previous file are not kept.
[[nodiscard]] Result<void> save_channel_controls(const std::filesystem::path& file, const ChannelControls& controls);

}  // namespace aegis::gateway
