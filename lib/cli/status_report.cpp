#include "cli/status_report.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

namespace aegis::cli {

namespace {

using nlohmann::json;

[[nodiscard]] json member(const json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto found = object.find(key);
    return found == object.end() ? json(nullptr) : *found;
}

// Seconds from a unix-ms time stamp to now; null when the stamp is missing or 0.
[[nodiscard]] json age_of(const json& stamp_ms, std::uint64_t now_ms) {
    if (!stamp_ms.is_number() || stamp_ms.get<double>() <= 0) return nullptr;
    return (static_cast<double>(now_ms) - stamp_ms.get<double>()) / 1000.0;
}

[[nodiscard]] std::string text_or(const json& value, std::string_view fallback = "unknown") {
    if (value.is_null()) return std::string(fallback);
    if (value.is_string()) return value.get<std::string>();
    return value.dump();
}

[[nodiscard]] std::string bytes_text(const json& value) {
    if (!value.is_number()) return "unknown";
    const double bytes = value.get<double>();
    if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
    if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024);
    return fmt::format("{:.1f} MiB", bytes / (1024 * 1024));
}

[[nodiscard]] std::string ago_text(const json& seconds) {
    if (!seconds.is_number()) return "unknown";
    return short_duration(seconds.get<double>()) + " ago";
}

}  // namespace

std::string short_duration(double seconds) {
    if (!(seconds > 0)) return "0s";
    const auto total = static_cast<std::uint64_t>(std::llround(seconds));
    if (total < 60) return fmt::format("{}s", total);
    if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
    if (total < 86400) return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
    return fmt::format("{}d{:02}h", total / 86400, total % 86400 / 3600);
}

json stable_status(const json& status, std::uint64_t now_ms) {
    const json queue = member(status, "queue");
    const json oldest_ms = member(queue, "oldest_waiting_ms");
    json oldest_age = age_of(oldest_ms, now_ms);
    if (oldest_ms.is_number() && oldest_ms.get<double>() == 0) oldest_age = 0.0;  // an empty queue
    const json next_ms = member(status, "next_attempt_ms");
    json next_in = nullptr;
    if (next_ms.is_number() && next_ms.get<double>() > 0) {
        next_in = (next_ms.get<double>() - static_cast<double>(now_ms)) / 1000.0;
    }
    const std::string state = text_or(member(status, "state"));
    json disconnected_s = nullptr;
    if (state != "connected") {
        // Since the session was lost (a heartbeat may be older: it is sent every 30 s); from the
        // last sign of life when the broker does not say.
        disconnected_s = age_of(member(status, "disconnected_since_ms"), now_ms);
        if (disconnected_s.is_null()) disconnected_s = age_of(member(status, "last_heartbeat_ms"), now_ms);
        if (disconnected_s.is_null() && member(status, "connected_since_ms").is_null() &&
            member(status, "server_fingerprint").is_null()) {
            disconnected_s = member(status, "uptime_s");  // never connected
        }
    }
    json subscriptions = member(status, "subscriptions");
    if (!subscriptions.is_array()) subscriptions = json::array();
    json channels = json::array();
    if (const auto reported = member(status, "channels"); reported.is_array()) {
        for (const auto& row : reported) {
            if (!row.is_object()) continue;
            json held = member(row, "held");
            if (held.is_object())
                held = json{{"reason", member(held, "reason")},
                            {"message", member(held, "message")},
                            {"since_ms", member(held, "since_ms")},
                            {"next_attempt_ms", member(held, "next_attempt_ms")}};
            channels.push_back(json{{"channel", member(row, "channel")},
                                    {"published", member(row, "published")},
                                    {"received", member(row, "received")},
                                    {"held", held}});
        }
    }
    return json{
        {"state", state},
        {"url", member(status, "url")},
        {"socket", member(status, "socket")},
        {"pid", member(status, "pid")},
        {"version", member(status, "version")},
        {"batch_format", member(status, "batch_format")},
        {"uptime_s", member(status, "uptime_s")},
        {"backend_fingerprint", member(status, "server_fingerprint")},
        {"assigned_id", member(status, "assigned_id")},
        {"role", member(status, "role")},
        {"session_id", member(status, "session_id")},
        {"session_age_s", member(status, "session_age_s")},
        {"connected_since_ms", member(status, "connected_since_ms")},
        {"disconnected_s", disconnected_s},
        {"next_attempt_ms", next_ms},
        {"next_attempt_in_s", next_in},
        {"reconnects", member(status, "reconnects")},
        {"rekeys", member(status, "rekeys")},
        {"rtt_ms", member(status, "rtt_ms")},
        {"last_heartbeat_ms", member(status, "last_heartbeat_ms")},
        {"last_heartbeat_age_s", age_of(member(status, "last_heartbeat_ms"), now_ms)},
        {"messages_in", member(status, "messages_in")},
        {"messages_out", member(status, "messages_out")},
        {"bytes_in", member(status, "bytes_in")},
        {"bytes_out", member(status, "bytes_out")},
        {"queue",
         {{"waiting", member(queue, "waiting")},
          {"in_flight", member(queue, "in_flight")},
          {"dead", member(queue, "dead")},
          {"bytes", member(queue, "bytes")},
          {"oldest_waiting_ms", oldest_ms},
          {"oldest_age_s", oldest_age}}},
        {"subscriptions", subscriptions},
        {"channels", channels},
        {"last_error", member(status, "last_error")},
        {"refusal", member(status, "refusal")},
        {"store_error", member(status, "store_error")},
        {"local", member(status, "local")},
    };
}

std::string human_status(const json& s) {
    std::string state = s["state"].get<std::string>();
    if (state == "connected" && s["session_age_s"].is_number()) {
        state += fmt::format(" (session {})", short_duration(s["session_age_s"].get<double>()));
    } else if (state == "refused" && s["refusal"].is_object()) {
        state += fmt::format(" ({}; retried at the maximum backoff)", text_or(member(s["refusal"], "reason")));
    } else if (state == "backing_off") {
        state = "backing off";
        if (s["next_attempt_in_s"].is_number()) {
            state += fmt::format(" (next attempt in {})", short_duration(s["next_attempt_in_s"].get<double>()));
        }
    }
    const json& q = s["queue"];
    std::string out;
    out += fmt::format("state:          {}\n", state);
    out += fmt::format("backend:        {}  {}\n", text_or(s["url"]), text_or(s["backend_fingerprint"]));
    out += fmt::format("identity:       {} ({})\n", text_or(s["assigned_id"]), text_or(s["role"], "no role"));
    out += fmt::format("session:        reconnects {}, rekeys {}, rtt {} ms, last heartbeat {}\n",
                       text_or(s["reconnects"]), text_or(s["rekeys"]), text_or(s["rtt_ms"]),
                       ago_text(s["last_heartbeat_age_s"]));
    out += fmt::format("queue:          {} waiting, {} in flight, {} dead, oldest {}\n", text_or(q["waiting"]),
                       text_or(q["in_flight"]), text_or(q["dead"]),
                       q["oldest_age_s"].is_number() ? short_duration(q["oldest_age_s"].get<double>()) : "unknown");
    out += fmt::format("messages:       in {} ({}), out {} ({})\n", text_or(s["messages_in"]),
                       bytes_text(s["bytes_in"]), text_or(s["messages_out"]), bytes_text(s["bytes_out"]));
    std::string patterns;
    for (const auto& pattern : s["subscriptions"]) patterns += (patterns.empty() ? "" : " ") + text_or(pattern);
    out += fmt::format("subscriptions:  {}\n", patterns.empty() ? "none" : patterns);
    if (s.contains("channels") && s["channels"].is_array() && !s["channels"].empty()) {
        out += fmt::format("channels:       {:>10}  {:>10}  {}\n", "PUBLISHED", "RECEIVED", "CHANNEL");
        for (const auto& row : s["channels"]) {
            std::string name = text_or(row["channel"]);
            if (row["held"].is_object()) {
                name += fmt::format(" (waiting: {}: {})", text_or(member(row["held"], "reason")),
                                    text_or(member(row["held"], "message"), ""));
            }
            out += fmt::format("                {:>10}  {:>10}  {}\n", text_or(row["published"]),
                               text_or(row["received"]), name);
        }
    }
    if (s["store_error"].is_object()) {
        out += fmt::format("store error:    {} (deliveries not acknowledged, retried)\n",
                           text_or(member(s["store_error"], "message"), "unknown"));
    }
    if (s["last_error"].is_object()) {
        out += fmt::format("last error:     {}: {}\n", text_or(member(s["last_error"], "reason")),
                           text_or(member(s["last_error"], "message"), ""));
    }
    out += fmt::format(
        "broker:         pid {}, {}, up {}{}\n", text_or(s["pid"]), text_or(s["version"]),
        s["uptime_s"].is_number() ? short_duration(s["uptime_s"].get<double>()) : "unknown",
        s["batch_format"].is_number() ? fmt::format(", signs batch format {}", text_or(s["batch_format"])) : "");
    return out;
}

namespace {

[[nodiscard]] std::string metric_text(std::string_view name, std::string_view type, std::string_view help,
                                      double number) {
    return fmt::format("# HELP aegis_broker_{} {}\n# TYPE aegis_broker_{} {}\naegis_broker_{} {}\n", name, help, name,
                       type, name, number);
}

constexpr std::string_view kUpHelp = "1 when the broker answered.";

}  // namespace

std::string prometheus_broker_down() {
    return metric_text("up", "gauge", kUpHelp, 0);
}

std::string prometheus_status(const json& s) {
    std::string out;
    const auto metric = [&](std::string_view name, std::string_view type, std::string_view help, const json& value,
                            double scale = 1) {
        if (!value.is_number() && !value.is_boolean()) return;
        const double number = value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>() * scale;
        out += metric_text(name, type, help, number);
    };
    metric("up", "gauge", kUpHelp, json(1));
    metric("connected", "gauge", "1 while the session to the gateway is up.", json(s["state"] == "connected"));
    metric("uptime_seconds", "gauge", "Seconds since the broker started.", s["uptime_s"]);
    metric("session_age_seconds", "gauge", "Seconds since the current session was authenticated.", s["session_age_s"]);
    metric("reconnects_total", "counter", "Sessions re-established after a loss.", s["reconnects"]);
    metric("rekeys_total", "counter", "Session key rotations.", s["rekeys"]);
    metric("rtt_seconds", "gauge", "Last heartbeat round trip.", s["rtt_ms"], 0.001);
    metric("messages_in_total", "counter", "Messages received from the gateway.", s["messages_in"]);
    metric("messages_out_total", "counter", "Messages sent to the gateway.", s["messages_out"]);
    metric("bytes_in_total", "counter", "Bytes received from the gateway.", s["bytes_in"]);
    metric("bytes_out_total", "counter", "Bytes sent to the gateway.", s["bytes_out"]);
    const json& q = s["queue"];
    metric("queue_waiting", "gauge", "Messages queued, not yet sent.", q["waiting"]);
    metric("queue_in_flight", "gauge", "Messages sent, not yet acknowledged.", q["in_flight"]);
    metric("queue_dead", "gauge", "Dead letters.", q["dead"]);
    metric("queue_bytes", "gauge", "Bytes in the outbound queue.", q["bytes"]);
    metric("queue_oldest_age_seconds", "gauge", "Age of the oldest waiting message.", q["oldest_age_s"]);
    metric("subscriptions", "gauge", "Patterns the gateway accepted.", json(s["subscriptions"].size()));
    return out;
}

Result<void> validate_thresholds(const CheckThresholds& t) {
    const auto above = [](const auto& warn, const auto& crit) { return warn && crit && *warn > *crit; };
    if (above(t.warn_queue, t.crit_queue))
        return make_error(ExitCode::usage, "--warn-queue ({}) is above --crit-queue ({})", *t.warn_queue,
                          *t.crit_queue);
    if (above(t.warn_dead, t.crit_dead))
        return make_error(ExitCode::usage, "--warn-dead ({}) is above --crit-dead ({})", *t.warn_dead, *t.crit_dead);
    if (above(t.warn_age_s, t.crit_age_s))
        return make_error(ExitCode::usage, "--warn-age ({}) is above --crit-age ({})", *t.warn_age_s, *t.crit_age_s);
    return {};
}

CheckOutcome evaluate_check(const json& s, const CheckThresholds& t) {
    CheckState state = CheckState::ok;
    std::vector<std::string> notes;
    // Severity order: ok < unknown < warning < critical.
    const auto rank = [](CheckState value) {
        return value == CheckState::unknown ? 1 : value == CheckState::ok ? 0 : static_cast<int>(value) + 1;
    };
    const auto raise = [&](CheckState to) {
        if (rank(to) > rank(state)) state = to;
    };
    const bool connected = s["state"] == "connected";
    if (connected) {
        notes.push_back("connected");
    } else if (s["state"] == "refused") {
        // Not a passing outage: nothing moves until an operator authorizes the identity again.
        notes.push_back(fmt::format("refused: {}", text_or(member(s["refusal"], "message"), "identity refused")));
        raise(CheckState::critical);
    } else {
        const json& down = s["disconnected_s"];
        const std::string since =
            down.is_number() ? " for " + short_duration(down.get<double>()) : " for an unknown time";
        notes.push_back(fmt::format("{}{}", s["state"].get<std::string>(), since));
        const bool too_long = t.crit_disconnected_s && down.is_number() && down.get<double>() > *t.crit_disconnected_s;
        raise(too_long ? CheckState::critical : CheckState::warning);
    }
    if (s["store_error"].is_object()) {
        notes.push_back(fmt::format("cannot store deliveries: {}", text_or(member(s["store_error"], "message"))));
        raise(CheckState::critical);
    }
    const json& q = s["queue"];
    std::string perf;
    const auto limit = [](const auto& value) { return value ? fmt::format("{}", *value) : std::string(); };
    if (q["waiting"].is_number()) {
        const auto queued = q["waiting"].get<std::uint64_t>() + q["in_flight"].get<std::uint64_t>();
        notes.push_back(fmt::format("queue {}", queued));
        if (t.crit_queue && queued > *t.crit_queue) raise(CheckState::critical);
        if (t.warn_queue && queued > *t.warn_queue) raise(CheckState::warning);
        perf += fmt::format(" queue={};{};{};0", queued, limit(t.warn_queue), limit(t.crit_queue));
    } else {
        notes.push_back("queue unknown");
        if (t.warn_queue || t.crit_queue) raise(CheckState::unknown);
    }
    if (q["oldest_age_s"].is_number()) {
        const double age = q["oldest_age_s"].get<double>();
        notes.push_back(fmt::format("oldest {}", short_duration(age)));
        if (t.crit_age_s && age > *t.crit_age_s) raise(CheckState::critical);
        if (t.warn_age_s && age > *t.warn_age_s) raise(CheckState::warning);
        perf += fmt::format(" oldest={:.3f}s;{};{};0", age, limit(t.warn_age_s), limit(t.crit_age_s));
    } else if (t.warn_age_s || t.crit_age_s) {
        notes.push_back("oldest unknown");
    }
    if (q["dead"].is_number()) {
        const auto dead = q["dead"].get<std::uint64_t>();
        notes.push_back(fmt::format("dead {}", dead));
        if (t.crit_dead && dead > *t.crit_dead) raise(CheckState::critical);
        if (t.warn_dead && dead > *t.warn_dead) raise(CheckState::warning);
        perf += fmt::format(" dead={};{};{};0", dead, limit(t.warn_dead), limit(t.crit_dead));
    } else if (t.warn_dead || t.crit_dead) {
        notes.push_back("dead unknown");
        raise(CheckState::unknown);
    }
    if (s["rtt_ms"].is_number()) perf += fmt::format(" rtt={}ms;;;0", s["rtt_ms"].get<double>());
    if (s["reconnects"].is_number()) perf += fmt::format(" reconnects={}c;;;0", s["reconnects"].get<std::uint64_t>());
    constexpr const char* kNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    std::string summary;
    for (const auto& note : notes) summary += (summary.empty() ? "" : ", ") + note;
    return CheckOutcome{state, fmt::format("AEGIS {} - {} |{}", kNames[static_cast<int>(state)], summary, perf)};
}

CheckOutcome unknown_check(const std::string& why) {
    return CheckOutcome{CheckState::unknown, fmt::format("AEGIS UNKNOWN - {}", why)};
}

std::string json_text(const nlohmann::json& object, const char* key) {
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) return "-";
    return found->is_string() ? found->get<std::string>() : found->dump();
}

}  // namespace aegis::cli
