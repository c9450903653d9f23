#include "gateway/fleet_view.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/role.h"
#include "gateway/gateway_session.h"
#include "identity/certificate.h"

namespace aegis::gateway {

namespace {

using json = nlohmann::json;

json certificate_json(const identity::Certificate& certificate) {
    return json{{"serial", certificate.serial},
                {"valid_after", identity::format_time(certificate.valid_after)},
                {"valid_before", identity::format_time(certificate.valid_before)},
                {"ca", crypto::fingerprint(certificate.ca_key)}};
}

void describe(json& entry, const AuthorizedIdentity& identity) {
    entry["id"] = identity.id;
    entry["role"] = std::string(to_string(identity.role));
    entry["authorized_by"] = identity.certificate ? "certificate" : "line " + std::to_string(identity.line);
    if (identity.certificate) entry["certificate"] = certificate_json(*identity.certificate);
}

}  // namespace

std::string render_sessions(const AuthorizedKeys& authorized,
                            const std::vector<std::shared_ptr<GatewaySession>>& connections,
                            const std::map<crypto::PublicKey, store::IdentitySummary>& stored, std::uint64_t now_ms) {
    std::map<crypto::PublicKey, json> entries;
    const auto entry_of = [&](const crypto::PublicKey& key) -> json& {
        auto [it, added] = entries.try_emplace(key);
        if (added) {
            it->second = json{{"id", nullptr},
                              {"role", nullptr},
                              {"fingerprint", crypto::fingerprint(key)},
                              {"authorized_by", nullptr},
                              {"certificate", nullptr},
                              {"connected", false},
                              {"peer", nullptr},
                              {"connected_since_ms", nullptr},
                              {"session_age_s", nullptr},
                              {"last_seen_ms", nullptr},
                              {"version", nullptr},
                              {"inbox", 0}};
        }
        return it->second;
    };
    for (const auto& [key, summary] : stored) {
        auto& entry = entry_of(key);
        entry["id"] = summary.id;
        entry["inbox"] = summary.pending;
        if (summary.last_seen_ms != 0) entry["last_seen_ms"] = summary.last_seen_ms;
    }
    for (const auto* identity : authorized.identities()) describe(entry_of(identity->key), *identity);
    std::size_t connected = 0;
    for (const auto& session : connections) {
        if (!session->established()) continue;
        auto& entry = entry_of(session->identity().key);
        describe(entry, session->identity());
        ++connected;
        entry["connected"] = true;
        entry["peer"] = session->peer();
        entry["connected_since_ms"] = session->established_ms();
        entry["session_age_s"] = (now_ms - std::min(now_ms, session->established_ms())) / 1000;
        entry["last_seen_ms"] = std::max(session->last_seen_ms(), session->established_ms());
        if (!session->software().empty()) entry["version"] = session->software();
    }
    json list = json::array();
    for (auto& [key, entry] : entries) list.push_back(std::move(entry));
    std::stable_sort(list.begin(), list.end(), [](const json& a, const json& b) {
        const auto id_a = a["id"].is_string() ? a["id"].get<std::string>() : std::string();
        const auto id_b = b["id"].is_string() ? b["id"].get<std::string>() : std::string();
        return id_a != id_b ? id_a < id_b : a["fingerprint"].get<std::string>() < b["fingerprint"].get<std::string>();
    });
    return json{{"known", list.size()}, {"connected", connected}, {"now_ms", now_ms}, {"sessions", std::move(list)}}
               .dump(2) +
           "\n";
}

}  // namespace aegis::gateway
