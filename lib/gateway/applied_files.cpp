#include "gateway/applied_files.h"

#include <fmt/format.h>

#include <set>

#include "gateway/line_file.h"

namespace aegis::gateway {

namespace {

std::string grant_text(const AuthorizedIdentity& identity) {
    std::string out = fmt::format("role={},id={}", to_string(identity.role), identity.id);
    if (identity.publish_narrowing) out += ",pub=" + *identity.publish_narrowing;
    if (identity.subscribe_narrowing) out += ",sub=" + *identity.subscribe_narrowing;
    return out;
}

// "narrow" when the only change adds restrictions, "widen" when it only removes some.
std::string_view change_kind(const AuthorizedIdentity& was, const AuthorizedIdentity& now) {
    if (was.role != now.role || was.id != now.id) return "change";
    const auto compare = [](const std::optional<std::string>& a, const std::optional<std::string>& b) {
        if (a == b) return 0;
        if (!a) return 1;   // restricted now
        if (!b) return -1;  // no longer restricted
        return 2;           // another restriction
    };
    const int publish = compare(was.publish_narrowing, now.publish_narrowing);
    const int subscribe = compare(was.subscribe_narrowing, now.subscribe_narrowing);
    if (publish == 2 || subscribe == 2 || publish * subscribe < 0) return "change";
    return publish + subscribe > 0 ? "narrow" : "widen";
}

}  // namespace

Result<void> record_applied(const std::filesystem::path& state_dir, const AuthorizedKeys& keys,
                            const RevocationList& revoked) {
    if (auto written = replace_line_file(state_dir / kAppliedAuthorized, keys.text); !written) return written;
    return replace_line_file(state_dir / kAppliedRevoked, revoked.text);
}

Result<AppliedFiles> load_access_files(const std::filesystem::path& authorized, const std::filesystem::path& revoked) {
    AppliedFiles files;
    auto keys = load_authorized_keys(authorized);
    if (!keys) return keys.take_error();
    files.keys = std::move(keys.value());
    if (!revoked.empty()) {
        auto list = load_revocation_list(revoked);
        if (!list) return list.take_error();
        files.revoked = std::move(list.value());
    }
    return files;
}

Result<std::optional<AppliedFiles>> read_applied(const std::filesystem::path& state_dir) {
    std::error_code ignored;
    if (!std::filesystem::exists(state_dir / kAppliedAuthorized, ignored)) return std::optional<AppliedFiles>();
    const bool has_revoked = std::filesystem::exists(state_dir / kAppliedRevoked, ignored);
    auto applied = load_access_files(state_dir / kAppliedAuthorized,
                                     has_revoked ? state_dir / kAppliedRevoked : std::filesystem::path());
    if (!applied) return applied.take_error();
    return std::optional<AppliedFiles>(std::move(applied.value()));
}

std::vector<std::string> describe_changes(const AppliedFiles& before, const AppliedFiles& after) {
    std::vector<std::string> out;
    for (const auto* now : after.keys.identities()) {
        const auto* was = before.keys.find(now->key);
        if (was == nullptr) {
            out.push_back(fmt::format("add {} {}", grant_text(*now), crypto::fingerprint(now->key)));
        } else if (!now->same_grant(*was)) {
            out.push_back(fmt::format("{} id={} {}: {} -> {}", change_kind(*was, *now), was->id,
                                      crypto::fingerprint(now->key), grant_text(*was), grant_text(*now)));
        }
    }
    for (const auto* was : before.keys.identities()) {
        if (after.keys.find(was->key) == nullptr)
            out.push_back(fmt::format("revoke {} {}", grant_text(*was), crypto::fingerprint(was->key)));
    }
    const auto before_cas = before.keys.authority_keys(), after_cas = after.keys.authority_keys();
    const std::set<crypto::PublicKey> had(before_cas.begin(), before_cas.end()),
        has(after_cas.begin(), after_cas.end());
    for (const auto& ca : has) {
        if (had.count(ca) == 0) out.push_back(fmt::format("trust CA {}", crypto::fingerprint(ca)));
    }
    for (const auto& ca : had) {
        if (has.count(ca) == 0)
            out.push_back(fmt::format("stop trusting CA {} (its certificates are refused)", crypto::fingerprint(ca)));
    }
    const auto named = [&](const crypto::PublicKey& key) {
        const auto* identity = after.keys.find(key);
        if (identity == nullptr) identity = before.keys.find(key);
        return identity == nullptr ? std::string() : " id=" + identity->id;
    };
    for (const auto& key : after.revoked.keys()) {
        if (before.revoked.keys().count(key) == 0)
            out.push_back(fmt::format("revoke key {}{}", crypto::fingerprint(key), named(key)));
    }
    for (const auto& key : before.revoked.keys()) {
        if (after.revoked.keys().count(key) == 0)
            out.push_back(fmt::format("unrevoke key {}{}", crypto::fingerprint(key), named(key)));
    }
    for (const auto serial : after.revoked.serials()) {
        if (before.revoked.serials().count(serial) == 0) out.push_back(fmt::format("revoke serial {}", serial));
    }
    for (const auto serial : before.revoked.serials()) {
        if (after.revoked.serials().count(serial) == 0) out.push_back(fmt::format("unrevoke serial {}", serial));
    }
    return out;
}

}  // namespace aegis::gateway
