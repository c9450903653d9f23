#include "gateway/metrics.h"

#include <fmt/format.h>

namespace aegis::gateway {

std::uint64_t& GatewayMetrics::entry(Labelled& map, std::string_view reason) {
    const auto found = map.find(reason);
    if (found != map.end()) return found->second;
    return map.emplace(std::string(reason), 0).first->second;
}

std::uint64_t GatewayMetrics::value(const Labelled& map, std::string_view reason) {
    const auto found = map.find(reason);
    return found == map.end() ? 0 : found->second;
}

namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void single(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
    header(out, name, type, help);
    out += fmt::format("{} {}\n", name, value);
}

}  // namespace

std::string render_prometheus(const GatewayMetrics& m) {
    std::string out;
    single(out, "aegis_gateway_sessions", "gauge", "Authenticated sessions open.", m.sessions);
    single(out, "aegis_gateway_connections", "gauge", "WebSocket connections open, authenticated or not.",
           m.connections);

    header(out, "aegis_gateway_handshakes_total", "counter", "Handshakes by result (and reason when failed).");
    out += fmt::format("aegis_gateway_handshakes_total{{result=\"ok\"}} {}\n", m.handshakes_ok);
    for (const auto& [reason, count] : m.handshakes_failed)
        out += fmt::format("aegis_gateway_handshakes_total{{result=\"failed\",reason=\"{}\"}} {}\n", reason, count);

    header(out, "aegis_gateway_refusals_total", "counter",
           "Refused handshakes, publishes, subscribes and records, by reason.");
    for (const auto& [reason, count] : m.refusals)
        out += fmt::format("aegis_gateway_refusals_total{{reason=\"{}\"}} {}\n", reason, count);

    header(out, "aegis_gateway_transport_refusals_total", "counter",
           "Connections ended by the transport, by reason (connection_limit, upgrade_timeout, upgrade_failed, "
           "message_too_large).");
    for (const auto* reason : {"connection_limit", "upgrade_timeout", "upgrade_failed", "message_too_large"})
        out += fmt::format("aegis_gateway_transport_refusals_total{{reason=\"{}\"}} {}\n", reason,
                           m.transport_refusals(reason));
    header(out, "aegis_gateway_access_denied_total", "counter",
           "Publishes and subscribes refused by the channel access rules, by action.");
    for (const auto* action : {"publish", "subscribe"})
        out += fmt::format("aegis_gateway_access_denied_total{{action=\"{}\"}} {}\n", action, m.access_denials(action));

    single(
        out, "aegis_gateway_reload_failures_total", "counter",
        "SIGHUP reloads refused as a whole (a bad authorized file, revocation list or certificate): nothing applied.",
        m.reload_failures);
    single(out, "aegis_gateway_config_last_reload_successful", "gauge",
           "1 when the last SIGHUP reload was applied (or none was tried), 0 when it was refused.",
           m.last_reload_ok ? 1 : 0);
    single(out, "aegis_gateway_messages_in_total", "counter", "Messages accepted from publishers.", m.messages_in);
    single(out, "aegis_gateway_messages_out_total", "counter", "Messages delivered to subscribers.", m.messages_out);
    single(out, "aegis_gateway_bytes_in_total", "counter", "WebSocket message bytes received.", m.bytes_in);
    single(out, "aegis_gateway_bytes_out_total", "counter", "WebSocket message bytes sent.", m.bytes_out);
    single(out, "aegis_gateway_inbox_messages", "gauge", "Messages stored in identity inboxes, not yet acknowledged.",
           m.inbox_messages);
    header(out, "aegis_gateway_inbox_dropped_total", "counter",
           "Stored messages dropped unacknowledged, by cause (full: over --inbox-max-messages; expired).");
    out += fmt::format("aegis_gateway_inbox_dropped_total{{cause=\"full\"}} {}\n", m.dropped("full"));
    out += fmt::format("aegis_gateway_inbox_dropped_total{{cause=\"expired\"}} {}\n", m.dropped("expired"));
    header(out, "aegis_gateway_session_starts_total", "counter",
           "Handshakes by kind (resumed with a valid token, or fresh).");
    out += fmt::format("aegis_gateway_session_starts_total{{kind=\"resumed\"}} {}\n", m.sessions_resumed);
    out += fmt::format("aegis_gateway_session_starts_total{{kind=\"fresh\"}} {}\n", m.sessions_fresh);
    single(out, "aegis_gateway_store_commits_total", "counter", "Group commits of the state file.", m.store_commits);
    single(out, "aegis_gateway_store_failures_total", "counter", "Failed commits of the state file.", m.store_failures);
    single(out, "aegis_gateway_channels_disabled", "gauge", "Channel patterns disabled by the channel controls.",
           m.channels_disabled);
    header(out, "aegis_gateway_channel_control_changes_total", "counter",
           "Channel patterns disabled or enabled, by action and source (admin endpoint, or SIGHUP reload).");
    for (const auto* action : {"disable", "enable"})
        for (const auto* source : {"admin", "reload"})
            out += fmt::format("aegis_gateway_channel_control_changes_total{{action=\"{}\",source=\"{}\"}} {}\n",
                               action, source, m.channel_control_count(action, source));
    render_topic_stats(out, m.topics);
    return out;
}

}  // namespace aegis::gateway
