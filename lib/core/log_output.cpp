#include "core/log_output.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace aegis::log {

namespace {

constexpr std::array<std::pair<std::string_view, Level>, 4> kLevels{
    {{"error", Level::error}, {"warn", Level::warn}, {"info", Level::info}, {"debug", Level::debug}}};

[[nodiscard]] bool starts_with_any(std::string_view line, std::initializer_list<std::string_view> prefixes) {
    for (const auto prefix : prefixes) {
        if (line.substr(0, prefix.size()) == prefix) return true;
    }
    return false;
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
    for (const auto& [word, level] : kLevels) {
        if (word == text) return level;
    }
    return std::nullopt;
}

std::optional<Format> parse_format(std::string_view text) {
    if (text == "text") return Format::text;
    if (text == "json") return Format::json;
    return std::nullopt;
}

std::string_view name(Level level) {
    for (const auto& [word, value] : kLevels) {
        if (value == level) return word;
    }
    return "info";
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
    struct stat info {};
    if (::fstat(STDERR_FILENO, &info) != 0) return false;
    return info.st_dev == device && info.st_ino == inode;
}

Level severity_of(std::string_view line) {
    if (starts_with_any(line, {"start-up failed", "fatal"})) return Level::error;
    if (starts_with_any(line, {"cannot ", "refused", "reload failed", "session backing_off", "session refused",
                               "local client", "inbox of id="}))
        return Level::warn;
    if (line.find(" failed") != std::string_view::npos || line.find("error") != std::string_view::npos)
        return Level::warn;
    return Level::info;
}

std::string format_line(const Settings& settings, Level level, std::string_view line,
                        std::chrono::system_clock::time_point now, int pid) {
    if (static_cast<int>(level) > static_cast<int>(settings.level)) return {};
    const auto prefix = settings.journal ? fmt::format("<{}>", static_cast<int>(level)) : std::string();
    const auto seconds = std::chrono::floor<std::chrono::seconds>(now);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now - seconds).count();
    const auto time = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, millis);
    if (settings.format == Format::json) {
        nlohmann::json object{{"level", name(level)}, {"tool", settings.tool}, {"pid", pid}, {"message", line}};
        if (!settings.journal) object["time"] = time;
        return prefix + object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
    }
    const auto who = settings.show_pid ? fmt::format("{}[{}]", settings.tool, pid) : settings.tool;
    if (settings.journal) return fmt::format("{}{}\n", prefix, line);  // journald adds time and name
    return fmt::format("{} {}: {}\n", time, who, line);
}

void write_line(const Settings& settings, std::string_view line) {
    const auto level = severity_of(line);
    // A system call per line only where the line shows the pid.
    const bool shows_pid = settings.format == Format::json || (settings.show_pid && !settings.journal);
    const auto text = format_line(settings, level, line, std::chrono::system_clock::now(), shows_pid ? ::getpid() : 0);
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
}

}  // namespace aegis::log
