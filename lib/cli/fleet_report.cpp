#include "cli/fleet_report.h"

#include <fmt/format.h>

#include "cli/status_report.h"

namespace aegis::cli {

namespace {

using nlohmann::json;

[[nodiscard]] std::string ago(const json& object, const char* key, std::uint64_t now_ms) {
    const auto found = object.find(key);
    if (found == object.end() || !found->is_number_unsigned()) return "never";
    const auto then = found->get<std::uint64_t>();
    return short_duration(static_cast<double>(now_ms > then ? now_ms - then : 0) / 1000.0) + " ago";
}

[[nodiscard]] std::string state(const json& session, std::uint64_t now_ms) {
    if (session.value("connected", false)) {
        const auto age = session.find("session_age_s");
        return "connected " +
               (age != session.end() && age->is_number() ? short_duration(age->get<double>()) : std::string("-"));
    }
    return "offline, last seen " + ago(session, "last_seen_ms", now_ms);
}

[[nodiscard]] std::string certificate(const json& session) {
    const auto found = session.find("certificate");
    if (found == session.end() || !found->is_object()) return json_text(session, "authorized_by");
    return fmt::format("serial {}, until {}", json_text(*found, "serial"), json_text(*found, "valid_before"));
}

}  // namespace

Result<std::string> fleet_table(const json& answer) {
    if (!answer.is_object() || !answer.contains("sessions") || !answer["sessions"].is_array())
        return make_error(ExitCode::failure, "the answer is not a gateway's /sessions");
    const auto now_ms = answer.value("now_ms", std::uint64_t{0});
    const auto& sessions = answer["sessions"];
    std::string out = fmt::format("{:<20}  {:<7}  {:<30}  {:<22}  {:>6}  {:<28}  {:<32}  {}\n", "ID", "ROLE", "STATE",
                                  "PEER", "INBOX", "VERSION", "AUTHORIZED BY", "FINGERPRINT");
    for (const auto& session : sessions) {
        out += fmt::format("{:<20}  {:<7}  {:<30}  {:<22}  {:>6}  {:<28}  {:<32}  {}\n", json_text(session, "id"),
                           json_text(session, "role"), state(session, now_ms), json_text(session, "peer"),
                           json_text(session, "inbox"), json_text(session, "version"), certificate(session),
                           json_text(session, "fingerprint"));
    }
    out += fmt::format("{} known, {} connected\n", answer.value("known", sessions.size()),
                       answer.value("connected", std::size_t{0}));
    return out;
}

}  // namespace aegis::cli
