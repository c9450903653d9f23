#include "gateway/metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/build_info.h"

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

Histogram::Histogram(std::vector<double> upper_bounds) : bounds(std::move(upper_bounds)), counts(bounds.size(), 0) {}

void Histogram::observe(double seconds) {
    const auto slot = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    if (static_cast<std::size_t>(slot) < counts.size()) ++counts[static_cast<std::size_t>(slot)];
    sum += seconds;
    ++count;
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

void histogram(std::string& out, std::string_view name, std::string_view help, const Histogram& h) {
    header(out, name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds[i], cumulative);
    }
    out +=
        fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, h.count, name, h.sum, name, h.count);
}

// The standard process metrics (as Prometheus client libraries export them), from /proc/self.
void process_metrics(std::string& out) {
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const auto after_name = stat.rfind(')');
    if (after_name == std::string::npos) return;
    std::istringstream fields(stat.substr(after_name + 2));
    std::vector<std::string> field;  // field[0] is the state (the third field of stat)
    for (std::string word; fields >> word;) field.push_back(word);
    if (field.size() < 22) return;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    const double cpu = (std::stod(field[11]) + std::stod(field[12])) / ticks;  // utime + stime
    double boot = 0;
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);) {
        if (line.rfind("btime ", 0) == 0) boot = std::stod(line.substr(6));
    }
    const double start = boot + std::stod(field[19]) / ticks;
    const double resident = std::stod(field[21]) * page;
    std::error_code ignored;
    std::size_t fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ignored);
         it != std::filesystem::directory_iterator(); it.increment(ignored))
        ++fds;
    header(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    out += fmt::format("process_cpu_seconds_total {}\n", cpu);
    header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out += fmt::format("process_resident_memory_bytes {}\n", resident);
    header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    out += fmt::format("process_open_fds {}\n", fds);
    header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out += fmt::format("process_max_fds {}\n", ::sysconf(_SC_OPEN_MAX));
    header(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    out += fmt::format("process_start_time_seconds {}\n", start);
}

}  // namespace

std::string render_prometheus(const GatewayMetrics& m) {
    std::string out;
    header(out, "aegis_gateway_build_info", "gauge", "The version and source revision of this gateway (always 1).");
    out +=
        fmt::format("aegis_gateway_build_info{{version=\"{}\",revision=\"{}\"}} 1\n", AEGIS_VERSION, source_revision());
    process_metrics(out);
    histogram(out, "aegis_gateway_handshake_duration_seconds",
              "From an accepted connection to its established session (upgrade, handshake, state store).",
              m.handshake_seconds);
    histogram(out, "aegis_gateway_store_commit_duration_seconds", "One group commit of the state store.",
              m.store_commit_seconds);
    histogram(out, "aegis_gateway_delivery_latency_seconds",
              "From a batch stored for a recipient to its acknowledgement (includes time the recipient was away).",
              m.delivery_seconds);
    if (m.own_certificate_valid_before) {
        single(out, "aegis_gateway_certificate_expiry_timestamp_seconds", "gauge",
               "When the gateway's own certificate (KEY-cert.pub) stops being valid, in Unix seconds.",
               *m.own_certificate_valid_before);
    }
    header(out, "aegis_gateway_session_certificates_expiring", "gauge",
           "Connected sessions admitted by a certificate that stops being valid within the window.");
    const char* windows[] = {"1d", "7d", "30d"};
    for (int i = 0; i < 3; ++i)
        out += fmt::format("aegis_gateway_session_certificates_expiring{{within=\"{}\"}} {}\n", windows[i],
                           m.session_certificates_expiring[i]);
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
    single(out, "aegis_gateway_probes_total", "counter",
           "Probe handshakes answered (aegis-connect --check): the identity judged, no session opened.", m.probes);
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
