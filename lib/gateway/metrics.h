#pragma once
// The gateway's counters and gauges, rendered as Prometheus text for GET /metrics.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "gateway/channel_stats.h"

namespace aegis::gateway {

struct GatewayMetrics {
    std::uint64_t sessions = 0;     // authenticated sessions open
    std::uint64_t connections = 0;  // WebSocket connections open, authenticated or not
    std::uint64_t handshakes_ok = 0;
    std::map<std::string, std::uint64_t, std::less<>> handshakes_failed;  // by reason
    std::map<std::string, std::uint64_t, std::less<>> refusals;           // by reason
    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t inbox_messages = 0;                                 // stored, not yet acknowledged
    std::map<std::string, std::uint64_t, std::less<>> inbox_dropped;  // by cause: full, expired
    std::uint64_t sessions_resumed = 0;
    std::uint64_t sessions_fresh = 0;
    std::uint64_t store_commits = 0;
    std::uint64_t store_failures = 0;
    bool last_commit_ok = true;  // the last group commit stored what it carried (GET /readyz)
    // Connections ended by the transport: connection_limit, upgrade_timeout, upgrade_failed, message_too_large.
    std::map<std::string, std::uint64_t, std::less<>> transport_refused;
    std::map<std::string, std::uint64_t, std::less<>> access_denied;  // by action: publish, subscribe
    std::uint64_t reload_failures = 0;    // SIGHUP reloads refused as a whole (nothing applied)
    bool last_reload_ok = true;           // the last reload applied (true before any)
    TopicStats topics;                    // traffic and refusals by topic
    std::uint64_t channels_disabled = 0;  // patterns in the channel controls
    // Channel control changes by "action source": disable|enable, admin|reload.
    std::map<std::string, std::uint64_t, std::less<>> channel_control_changes;

    void count_dropped(std::string_view cause, std::uint64_t messages) { entry(inbox_dropped, cause) += messages; }
    [[nodiscard]] std::uint64_t dropped(std::string_view cause) const { return value(inbox_dropped, cause); }

    void count_handshake_failure(std::string_view reason) { ++entry(handshakes_failed, reason); }
    void count_refusal(std::string_view reason) { ++entry(refusals, reason); }
    void count_transport_refusal(std::string_view reason) { ++entry(transport_refused, reason); }
    void count_access_denied(std::string_view action) { ++entry(access_denied, action); }
    void count_channel_control(std::string_view action, std::string_view source) {
        ++entry(channel_control_changes, std::string(action) + ' ' + std::string(source));
    }
    [[nodiscard]] std::uint64_t channel_control_count(std::string_view action, std::string_view source) const {
        return value(channel_control_changes, std::string(action) + ' ' + std::string(source));
    }
    [[nodiscard]] std::uint64_t transport_refusals(std::string_view reason) const {
        return value(transport_refused, reason);
    }
    [[nodiscard]] std::uint64_t access_denials(std::string_view action) const { return value(access_denied, action); }
    [[nodiscard]] std::uint64_t handshake_failures(std::string_view reason) const {
        return value(handshakes_failed, reason);
    }
    [[nodiscard]] std::uint64_t refusal_count(std::string_view reason) const { return value(refusals, reason); }

private:
    using Labelled = std::map<std::string, std::uint64_t, std::less<>>;
    static std::uint64_t& entry(Labelled& map, std::string_view reason);
    static std::uint64_t value(const Labelled& map, std::string_view reason);
};

// Prometheus text exposition format 0.0.4.
[[nodiscard]] std::string render_prometheus(const GatewayMetrics& metrics);

}  // namespace aegis::gateway
