#include "broker/local_subscriptions.h"

#include <algorithm>

#include "channel/channel.h"

namespace aegis::broker {

void LocalSubscriptions::add(SubscriberId subscriber, const std::vector<std::string>& patterns) {
    auto& mine = patterns_[subscriber];
    for (const auto& pattern : patterns) {
        if (std::find(mine.begin(), mine.end(), pattern) == mine.end()) mine.push_back(pattern);
    }
}

void LocalSubscriptions::remove(SubscriberId subscriber) {
    patterns_.erase(subscriber);
}

std::vector<std::string> LocalSubscriptions::gateway_set(const std::vector<std::string>& extra) const {
    std::vector<std::string> all = extra;
    for (const auto& [subscriber, patterns] : patterns_) all.insert(all.end(), patterns.begin(), patterns.end());
    return minimal_pattern_set(std::move(all));
}

std::vector<SubscriberId> LocalSubscriptions::subscribers_for(std::string_view channel) const {
    std::vector<SubscriberId> out;
    for (const auto& [subscriber, patterns] : patterns_) {
        const bool wanted = std::any_of(patterns.begin(), patterns.end(),
                                        [&](const std::string& pattern) { return channel::matches(pattern, channel); });
        if (wanted) out.push_back(subscriber);
    }
    return out;
}

std::vector<std::string> minimal_pattern_set(std::vector<std::string> patterns) {
    std::sort(patterns.begin(), patterns.end());
    patterns.erase(std::unique(patterns.begin(), patterns.end()), patterns.end());
    std::vector<std::string> out;
    for (const auto& candidate : patterns) {
        const bool covered = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& other) {
            return other != candidate && channel::covers(other, candidate);
        });
        if (!covered) out.push_back(candidate);
    }
    return out;
}

}  // namespace aegis::broker
