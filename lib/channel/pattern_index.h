#pragma once
// Which of many subscribers' patterns may match a channel, without testing every subscriber.
// Each pattern is filed under its first two tokens when both are literal ("backend.host42.>"),
// else under its first token when that is literal ("agent.>", "audit"), else with the patterns
// that start with a wildcard. A lookup collects what is filed under the channel's first two
// tokens, under its first token, and with the wildcards: every pattern that can match the
// channel is among them (`*` and `>` each match at least one token), and the caller still
// tests each candidate's patterns with matches(), since a candidate need not match.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::channel {

template <typename Key>
class PatternIndex {
public:
    // Files KEY under its patterns, replacing the ones it had.
    void set(const Key& key, const std::vector<std::string>& patterns) {
        erase(key);
        auto& filed = filed_[key];
        for (const auto& pattern : patterns) {
            const auto bucket = bucket_of(pattern);
            buckets_[bucket].insert(key);
            filed.push_back(bucket);
        }
    }

    void erase(const Key& key) {
        const auto it = filed_.find(key);
        if (it == filed_.end()) return;
        for (const auto& bucket : it->second) {
            const auto found = buckets_.find(bucket);
            if (found == buckets_.end()) continue;
            found->second.erase(key);
            if (found->second.empty()) buckets_.erase(found);
        }
        filed_.erase(it);
    }

    void clear() {
        buckets_.clear();
        filed_.clear();
    }

    // The keys whose patterns may match CHANNEL, each once, in key order.
    [[nodiscard]] std::vector<Key> candidates(std::string_view channel) const {
        std::vector<Key> out;
        const auto first_end = channel.find('.');
        const auto second_end = first_end == std::string_view::npos ? first_end : channel.find('.', first_end + 1);
        const std::string first(channel.substr(0, first_end));
        add(std::string(1, kFirstToken) + first, out);
        if (first_end != std::string_view::npos)
            add(std::string(1, kTwoTokens) + std::string(channel.substr(0, second_end)), out);
        add(std::string(1, kWildcard), out);
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        return out;
    }

private:
    // Bucket names: a tag, then the literal prefix (tags keep "a" and "a.b" apart).
    static constexpr char kWildcard = '*';
    static constexpr char kFirstToken = '1';
    static constexpr char kTwoTokens = '2';

    [[nodiscard]] static bool literal(std::string_view token) { return token != "*" && token != ">"; }

    [[nodiscard]] static std::string bucket_of(std::string_view pattern) {
        const auto first_end = pattern.find('.');
        const auto first = pattern.substr(0, first_end);
        if (!literal(first)) return std::string(1, kWildcard);
        if (first_end == std::string_view::npos) return std::string(1, kFirstToken) + std::string(first);
        const auto second_end = pattern.find('.', first_end + 1);
        const auto second = pattern.substr(
            first_end + 1, second_end == std::string_view::npos ? std::string_view::npos : second_end - first_end - 1);
        if (!literal(second)) return std::string(1, kFirstToken) + std::string(first);
        return std::string(1, kTwoTokens) + std::string(pattern.substr(0, second_end));
    }

    void add(const std::string& bucket, std::vector<Key>& out) const {
        const auto found = buckets_.find(bucket);
        if (found != buckets_.end()) out.insert(out.end(), found->second.begin(), found->second.end());
    }

    std::map<std::string, std::set<Key>, std::less<>> buckets_;
    std::map<Key, std::vector<std::string>> filed_;  // the buckets each key is in
};

}  // namespace aegis::channel
