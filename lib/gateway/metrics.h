#pragma once
// The gateway's counters and gauges, rendered as Prometheus text for GET /metrics.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/channel_stats.h"

namespace aegis::gateway {

// A Prometheus histogram: cumulative counts per upper bound (seconds), their sum and count.
struct Histogram {
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double seconds);

    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;  // per bound, not cumulative; rendered cumulative
    double sum = 0;
    std::uint64_t count = 0;
};

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
    std::uint64_t probes = 0;  // probe handshakes answered (aegis-connect --check): no session opened
    std::uint64_t store_commits = 0;
    std::uint64_t store_failures = 0;
    bool last_commit_ok = true;  // the last group commit stored what it carried (GET /readyz)
    // Accepted connection to established session (the WebSocket upgrade, the handshake, the store).
    Histogram handshake_seconds{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
    // One group commit of the state store.
    Histogram store_commit_seconds{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
    // A batch stored for a recipient to its deliver_ack (includes time waiting for an offline one).
    Histogram delivery_seconds{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600, 86400}};
    // Set when rendered: the gateway's own certificate's end (Unix s), and the connected sessions
    // whose certificates end within a day, a week and 30 days.
    std::optional<std::uint64_t> own_certificate_valid_before;
    std::uint64_t session_certificates_expiring[3] = {0, 0, 0};
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
