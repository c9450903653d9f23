#include "cli/queue_report.h"

#include <fmt/format.h>

#include "cli/message_format.h"
#include "cli/status_report.h"
#include "crypto/primitives.h"

namespace aegis::cli {

namespace {

using nlohmann::json;

[[nodiscard]] std::string age(const json& object, const char* key, std::uint64_t now_ms) {
    const auto found = object.find(key);
    if (found == object.end() || !found->is_number() || found->get<double>() <= 0) return "-";
    return short_duration((static_cast<double>(now_ms) - found->get<double>()) / 1000.0);
}

}  // namespace

std::string queue_table(const json& messages, std::uint64_t now_ms) {
    if (!messages.is_array() || messages.empty()) return "no messages\n";
    std::string out = fmt::format("{:<32}  {:<9}  {:<8}  {:>8}  {:>6}  {:>8}  {}\n", "ID", "STATE", "PRIORITY",
                                  "ATTEMPTS", "AGE", "BYTES", "CHANNEL");
    for (const auto& m : messages) {
        std::string channel = json_text(m, "channel");
        if (m.contains("dead_reason") && m["dead_reason"].is_string())
            channel += " (" + m["dead_reason"].get<std::string>() + ")";
        if (m.contains("held") && m["held"].is_object())
            channel += " (waiting: " + json_text(m["held"], "reason") + ": " + json_text(m["held"], "message") + ")";
        out += fmt::format("{:<32}  {:<9}  {:<8}  {:>8}  {:>6}  {:>8}  {}\n", json_text(m, "message_id"),
                           json_text(m, "state"), json_text(m, "priority"), json_text(m, "attempts"),
                           age(m, "created_ms", now_ms), json_text(m, "bytes"), channel);
    }
    return out;
}

std::string queue_message_text(const json& message, ByteView payload, std::uint64_t now_ms) {
    std::string out;
    for (const char* key : {"message_id", "channel", "state", "priority", "kind", "attempts", "bytes", "dead_reason"}) {
        out += fmt::format("{:<12} {}\n", std::string(key) + ":", json_text(message, key));
    }
    if (message.contains("held") && message["held"].is_object()) {
        out += fmt::format("{:<12} {}: {}\n", "waiting:", json_text(message["held"], "reason"),
                           json_text(message["held"], "message"));
    }
    if (message.value("created_ms", 0.0) > 0) {
        out += fmt::format("{:<12} {} ({} ago)\n", "created:", iso8601_utc(message["created_ms"].get<std::uint64_t>()),
                           age(message, "created_ms", now_ms));
    }
    if (message.value("next_attempt_ms", 0.0) > 0) {
        out += fmt::format("{:<12} {}\n", "next try:", iso8601_utc(message["next_attempt_ms"].get<std::uint64_t>()));
    }
    if (message.value("expires_ms", 0.0) > 0) {
        out += fmt::format("{:<12} {}\n", "expires:", iso8601_utc(message["expires_ms"].get<std::uint64_t>()));
    }
    if (message.contains("headers") && message["headers"].is_object()) {
        for (const auto& [key, value] : message["headers"].items()) {
            out += fmt::format("{:<12} {}={}\n", "header:", key,
                               value.is_string() ? value.get<std::string>() : value.dump());
        }
    }
    const auto text = as_text(payload);
    out += is_utf8(text)
               ? fmt::format("\n{}\n", text)
               : fmt::format("\n(payload, {} bytes, base64) {}\n", payload.size(), crypto::base64_encode(payload));
    return out;
}

std::string queue_stats_text(const json& stats, std::uint64_t now_ms) {
    std::string out;
    for (const char* key : {"waiting", "in_flight", "dead", "bytes", "max_messages", "max_bytes"}) {
        out += fmt::format("{:<14} {}\n", std::string(key) + ":", json_text(stats, key));
    }
    out += fmt::format("{:<14} {}\n", "oldest:", age(stats, "oldest_waiting_ms", now_ms));
    return out;
}

json queue_message_json(json message, ByteView payload) {
    const auto text = as_text(payload);
    if (is_utf8(text)) {
        message["payload"] = std::string(text);
    } else {
        message["payload_base64"] = crypto::base64_encode(payload);
    }
    return message;
}

std::string cursor_table(const json& cursors, std::uint64_t now_ms) {
    if (!cursors.is_array() || cursors.empty()) return "no durable subscriptions\n";
    std::string out = fmt::format("{:<24}  {:>8}  {:>8}  {:>6}  {:<8}  {}\n", "NAME", "PENDING", "DROPPED", "AGE",
                                  "ATTACHED", "PATTERNS");
    for (const auto& c : cursors) {
        std::string patterns;
        for (const auto& pattern : c.value("patterns", json::array())) {
            if (!patterns.empty()) patterns += ' ';
            patterns += pattern.is_string() ? pattern.get<std::string>() : pattern.dump();
        }
        out += fmt::format("{:<24}  {:>8}  {:>8}  {:>6}  {:<8}  {}\n", json_text(c, "name"), json_text(c, "pending"),
                           json_text(c, "dropped"), age(c, "created_ms", now_ms),
                           c.value("attached", false) ? "yes" : "no", patterns);
    }
    return out;
}

Error explain_unsupported(Error error, std::string_view what) {
    if (error.exit == ExitCode::usage && error.message.rfind("unknown op", 0) == 0) {
        return make_error(ExitCode::failure, "this broker does not support {} ({})", what, error.message);
    }
    return error;
}

nlohmann::json answer_fields(const nlohmann::json& answer) {
    nlohmann::json fields = answer;
    fields.erase("id");
    fields.erase("ok");
    return fields;
}

std::string queue_count_text(std::string_view command, const nlohmann::json& fields) {
    const auto count = fields.value("count", 0ULL);
    const auto done = command == "retry" ? "retrying" : command == "drop" ? "dropped" : "purged";
    auto text = fmt::format("{} {} message{}\n", done, count, count == 1 ? "" : "s");
    if (const auto expired = fields.value("expired", 0ULL); expired > 0) {
        text += fmt::format("{} expired message{} not retried: {} would expire again at once (give --ttl DURATION)\n",
                            expired, expired == 1 ? "" : "s", expired == 1 ? "it" : "they");
    }
    return text;
}

}  // namespace aegis::cli
