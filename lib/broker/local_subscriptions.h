#pragma once
// Which local subscribers want which channel patterns, and the one pattern set the broker's
// session asks the gateway for: their union, without patterns another one already covers.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::broker {

using SubscriberId = std::uint64_t;

class LocalSubscriptions {
public:
    // Adds patterns to a subscriber (a new one or one already subscribed).
    void add(SubscriberId subscriber, const std::vector<std::string>& patterns);
    void remove(SubscriberId subscriber);

    // The union of every subscriber's patterns (plus `extra`), minimal and sorted.
    [[nodiscard]] std::vector<std::string> gateway_set(const std::vector<std::string>& extra = {}) const;
    // Subscribers with at least one pattern matching `channel`, each once.
    [[nodiscard]] std::vector<SubscriberId> subscribers_for(std::string_view channel) const;

    [[nodiscard]] std::size_t subscribers() const { return patterns_.size(); }
    [[nodiscard]] bool contains(SubscriberId subscriber) const { return patterns_.count(subscriber) != 0; }

private:
    std::map<SubscriberId, std::vector<std::string>> patterns_;
};

// `patterns` without duplicates and without any pattern another one covers, sorted.
[[nodiscard]] std::vector<std::string> minimal_pattern_set(std::vector<std::string> patterns);

}  // namespace aegis::broker
