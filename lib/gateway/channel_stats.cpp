#include "gateway/channel_stats.h"

#include <fmt/format.h>

namespace aegis::gateway {

std::string topic_label(std::string_view channel) {
    const auto first = channel.find('.');
    if (first == std::string_view::npos) return std::string(kOtherTopic);
    const auto second = channel.find('.', first + 1);
    if (second == std::string_view::npos || second + 1 >= channel.size()) return std::string(kOtherTopic);
    const auto space = channel.substr(0, first);
    const auto id = channel.substr(first + 1, second - first - 1);
    const auto topic = channel.substr(second + 1);
    if (space == "agent") return fmt::format("agent.*.{}", topic);
    if (space == "backend") return fmt::format("backend.{}.{}", id == "all" ? "all" : "*", topic);
    return std::string(kOtherTopic);
}

TopicCounts& TopicStats::of(std::string_view channel) {
    auto label = topic_label(channel);
    if (const auto found = topics_.find(label); found != topics_.end()) return found->second;
    // "other" does not count toward the cap, so the cap is the number of named labels.
    const bool has_other = topics_.count(kOtherTopic) != 0;
    if (topics_.size() - (has_other ? 1 : 0) >= kMaxTopicLabels) label = std::string(kOtherTopic);
    return topics_[label];
}

TopicCounts TopicStats::counts(std::string_view label) const {
    const auto found = topics_.find(label);
    return found == topics_.end() ? TopicCounts{} : found->second;
}

namespace {

// Label values are channel characters, '.', '*' and "other": nothing to escape.
void family(std::string& out, std::string_view name, std::string_view help, const TopicStats& stats,
            std::uint64_t TopicCounts::*member) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
    for (const auto& [topic, counts] : stats.topics())
        out += fmt::format("{}{{topic=\"{}\"}} {}\n", name, topic, counts.*member);
}

}  // namespace

void render_topic_stats(std::string& out, const TopicStats& stats) {
    family(out, "aegis_gateway_topic_messages_in_total", "Messages accepted from publishers, by topic.", stats,
           &TopicCounts::messages_in);
    family(out, "aegis_gateway_topic_bytes_in_total", "Batch bytes accepted from publishers, by topic.", stats,
           &TopicCounts::bytes_in);
    family(out, "aegis_gateway_topic_messages_out_total", "Messages delivered to subscribers, by topic.", stats,
           &TopicCounts::messages_out);
    family(out, "aegis_gateway_topic_bytes_out_total", "Batch bytes delivered to subscribers, by topic.", stats,
           &TopicCounts::bytes_out);
    out +=
        "# HELP aegis_gateway_topic_refusals_total Publishes refused, by topic and reason.\n"
        "# TYPE aegis_gateway_topic_refusals_total counter\n";
    for (const auto& [topic, counts] : stats.topics())
        for (const auto& [reason, count] : counts.refused)
            out += fmt::format("aegis_gateway_topic_refusals_total{{topic=\"{}\",reason=\"{}\"}} {}\n", topic, reason,
                               count);
}

}  // namespace aegis::gateway
