#pragma once
// At most one log line per key per interval. Events that come sooner are counted and held
// back; the next line for the key carries them, or due() hands them out once the interval
// has passed, so a burst is one line and its tail is never silently lost. Pure: the caller
// passes the time and does the logging.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aegis {

class LogThrottle {
public:
    using Clock = std::chrono::steady_clock;

    explicit LogThrottle(std::chrono::milliseconds interval) : interval_(interval) {}

    // `count` more events for `key`. Returns the number a line should report now (count plus
    // what was held back), or nullopt when a line for `key` went out less than an interval ago.
    [[nodiscard]] std::optional<std::uint64_t> note(const std::string& key, std::uint64_t count, Clock::time_point now);
    // The held-back counts whose interval has passed, removed; keys quiet for an interval are forgotten.
    [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> due(Clock::time_point now);
    // When the earliest held-back count becomes due; nullopt when nothing is held back.
    [[nodiscard]] std::optional<Clock::time_point> next_due() const;
    [[nodiscard]] std::chrono::milliseconds interval() const { return interval_; }

private:
    struct Entry {
        Clock::time_point last_line{};
        std::uint64_t held = 0;
    };
    std::chrono::milliseconds interval_;
    std::map<std::string, Entry> entries_;
};

}  // namespace aegis
