#include "core/log_throttle.h"

namespace aegis {

std::optional<std::uint64_t> LogThrottle::note(const std::string& key, std::uint64_t count, Clock::time_point now) {
    const auto [it, fresh] = entries_.try_emplace(key);
    auto& entry = it->second;
    if (!fresh && now - entry.last_line < interval_) {
        entry.held += count;
        return std::nullopt;
    }
    const auto total = count + entry.held;
    entry.last_line = now;
    entry.held = 0;
    return total;
}

std::vector<std::pair<std::string, std::uint64_t>> LogThrottle::due(Clock::time_point now) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (auto it = entries_.begin(); it != entries_.end();) {
        auto& entry = it->second;
        if (now - entry.last_line < interval_) {
            ++it;
            continue;
        }
        if (entry.held == 0) {
            it = entries_.erase(it);
            continue;
        }
        out.emplace_back(it->first, entry.held);
        entry.last_line = now;
        entry.held = 0;
        ++it;
    }
    return out;
}

std::optional<LogThrottle::Clock::time_point> LogThrottle::next_due() const {
    std::optional<Clock::time_point> earliest;
    for (const auto& [key, entry] : entries_) {
        if (entry.held == 0) continue;
        const auto when = entry.last_line + interval_;
        if (!earliest || when < *earliest) earliest = when;
    }
    return earliest;
}

}  // namespace aegis
