#pragma once
// Per-topic traffic counters for the gateway's /metrics. A channel is counted under its topic
// label, never its host id, so the number of series is bounded by the topics in use:
// agent.<id>.<topic> is "agent.*.<topic>", backend.<id>.<topic> is "backend.*.<topic>",
// backend.all.<topic> stays as it is. Past kMaxTopicLabels distinct labels the rest are "other".

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace aegis::gateway {

inline constexpr std::size_t kMaxTopicLabels = 256;
inline constexpr std::string_view kOtherTopic = "other";

// The label of a channel name (see above); "other" for a name outside the three namespaces.
[[nodiscard]] std::string topic_label(std::string_view channel);

struct TopicCounts {
    std::uint64_t messages_in = 0;                              // accepted from publishers
    std::uint64_t bytes_in = 0;                                 // batch bytes accepted
    std::uint64_t messages_out = 0;                             // delivered to subscribers
    std::uint64_t bytes_out = 0;                                // batch bytes delivered
    std::map<std::string, std::uint64_t, std::less<>> refused;  // publishes refused, by reason
};

class TopicStats {
public:
    // The counters of the channel's label, or of "other" once the cap is reached.
    TopicCounts& of(std::string_view channel);
    [[nodiscard]] const std::map<std::string, TopicCounts, std::less<>>& topics() const { return topics_; }
    // The counters of one label (a zero set when it has none).
    [[nodiscard]] TopicCounts counts(std::string_view label) const;

private:
    std::map<std::string, TopicCounts, std::less<>> topics_;
};

// The Prometheus families aegis_gateway_topic_{messages,bytes}_{in,out}_total and
// aegis_gateway_topic_refusals_total, appended to `out`.
void render_topic_stats(std::string& out, const TopicStats& stats);

}  // namespace aegis::gateway
