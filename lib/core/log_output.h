#pragma once
// How the daemons write their log lines (--log-level, --log-format): plain text with a timestamp,
// or under journald a "<N>" syslog priority prefix and no timestamp of its own, or JSON lines
// for log shippers. The library logs through a LogSink of plain lines; the tools format them here.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace aegis::log {

// Ordered by importance; the values are syslog's priorities (journald's "<N>" prefix).
enum class Level : int { error = 3, warn = 4, info = 6, debug = 7 };
enum class Format { text, json };

[[nodiscard]] std::optional<Level> parse_level(std::string_view text);    // error|warn|info|debug
[[nodiscard]] std::optional<Format> parse_format(std::string_view text);  // text|json
[[nodiscard]] std::string_view name(Level level);

// True when standard error is a journald stream: $JOURNAL_STREAM names its device and inode.
[[nodiscard]] bool stderr_is_journal();

// The importance of one of the library's lines: what failed or was refused is a warning, a
// start-up failure an error, the rest information.
[[nodiscard]] Level severity_of(std::string_view line);

struct Settings {
    std::string tool;  // "aegis-connect"
    bool show_pid = false;
    Level level = Level::info;  // lines less important than this are dropped
    Format format = Format::text;
    bool journal = false;  // stderr_is_journal(): a priority prefix, no timestamp
};

// One formatted line with its newline, or "" when `level` is below the settings' level.
[[nodiscard]] std::string format_line(const Settings& settings, Level level, std::string_view line,
                                      std::chrono::system_clock::time_point now, int pid);

// Formats `line` at severity_of(line) and writes it to stderr, flushed.
void write_line(const Settings& settings, std::string_view line);

}  // namespace aegis::log
