#include "gateway/authorized_keys.h"

#include <algorithm>

#include "channel/channel.h"
#include "gateway/line_file.h"
#include "identity/keyfile.h"
#include "protocol/reason.h"

namespace aegis::gateway {

namespace {

Error bad_line(std::string message) {
    return Error{ExitCode::bad_input, std::move(message), 0};
}

// Applies one "name=value" option to `identity`; `seen` catches an option given twice.
Result<void> apply_option(std::string_view option, AuthorizedIdentity& identity, std::vector<std::string>& seen) {
    const auto equals = option.find('=');
    if (option.empty()) return bad_line("empty option (stray comma)");
    if (equals == std::string_view::npos)
        return bad_line(fmt::format("option '{}' has no value (expected name=value)", option));
    const std::string name(option.substr(0, equals));
    const std::string_view value = option.substr(equals + 1);
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
        return bad_line(fmt::format("option '{}' given twice", name));
    seen.push_back(name);

    if (name == "role") {
        const auto role = parse_role(value);
        if (!role) return bad_line(fmt::format("unknown role '{}' (expected agent or backend)", value));
        identity.role = *role;
    } else if (name == "id") {
        if (auto valid = channel::validate_id(value); !valid) return bad_line(valid.error().message);
        identity.id = std::string(value);
    } else if (name == "pub" || name == "sub") {
        if (auto valid = channel::validate_pattern(value); !valid)
            return bad_line(fmt::format("{}=: {}", name, valid.error().message));
        (name == "pub" ? identity.publish_narrowing : identity.subscribe_narrowing) = std::string(value);
    } else {
        return bad_line(fmt::format("unknown option '{}' (expected role, id, pub or sub)", name));
    }
    return {};
}

}  // namespace

Result<crypto::PublicKey> parse_authority_line(std::string_view line) {
    line = trim_blanks(line);
    constexpr std::string_view kMarker = "@cert-authority";
    if (!line.starts_with(kMarker) ||
        (line.size() > kMarker.size() && kBlanks.find(line[kMarker.size()]) == std::string_view::npos))
        return bad_line("expected '@cert-authority aegis-ed25519 <base64> [comment]'");
    const auto key_text = trim_blanks(line.substr(kMarker.size()));
    if (key_text.empty()) return bad_line("@cert-authority needs the CA's public key ('aegis-ed25519 <base64>')");
    auto key = identity::parse_public_key_line(key_text);
    if (!key) return bad_line(fmt::format("@cert-authority: {}", key.error().message));
    return key->key;
}

bool AuthorizedIdentity::same_grant(const AuthorizedIdentity& other) const {
    return id == other.id && role == other.role && publish_narrowing == other.publish_narrowing &&
           subscribe_narrowing == other.subscribe_narrowing;
}

Result<AuthorizedIdentity> parse_authorized_line(std::string_view line) {
    line = trim_blanks(line);
    const auto blank = line.find_first_of(kBlanks);
    const std::string_view options = line.substr(0, blank);
    if (options.rfind("aegis-ed25519", 0) == 0)
        return bad_line("missing options before the key (expected role=...,id=...)");
    if (blank == std::string_view::npos)
        return bad_line("missing key (expected options then 'aegis-ed25519 <base64>')");

    AuthorizedIdentity identity;
    std::vector<std::string> seen;
    std::size_t start = 0;
    while (true) {
        const auto comma = options.find(',', start);
        const auto option =
            options.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (auto applied = apply_option(option, identity, seen); !applied) return applied.take_error();
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (std::find(seen.begin(), seen.end(), "role") == seen.end()) return bad_line("missing role= option");
    if (std::find(seen.begin(), seen.end(), "id") == seen.end()) return bad_line("missing id= option");

    auto key = identity::parse_public_key_line(trim_blanks(line.substr(blank)));
    if (!key) return bad_line(key.error().message);
    identity.key = key->key;
    identity.comment = key->comment;
    return identity;
}

void AuthorizedKeys::add_authority(const crypto::PublicKey& ca, std::size_t line) {
    authorities_.emplace(ca, line);
}

Result<AuthorizedIdentity> AuthorizedKeys::authorize(const crypto::PublicKey& key, ByteView certificate,
                                                     std::uint64_t now_s, std::uint64_t skew_s) const {
    using protocol::Reason;
    if (const auto* listed = find(key)) return *listed;
    if (certificate.empty())
        return protocol::protocol_error(Reason::unknown_identity, "key not in the authorized file");
    auto decoded = identity::decode_certificate(certificate);
    if (!decoded) return protocol::protocol_error(Reason::unknown_identity, decoded.error().message);
    const auto& cert = decoded.value();
    if (cert.key != key)
        return protocol::protocol_error(
            Reason::unknown_identity,
            fmt::format("certificate serial {} is for another key ({})", cert.serial, crypto::fingerprint(cert.key)));
    if (authorities_.count(cert.ca_key) == 0)
        return protocol::protocol_error(Reason::unknown_identity,
                                        fmt::format("certificate serial {} is signed by CA {}, not trusted by the "
                                                    "authorized file (no @cert-authority line)",
                                                    cert.serial, crypto::fingerprint(cert.ca_key)));
    if (cert.role == identity::CertificateRole::gateway)
        return protocol::protocol_error(
            Reason::unknown_identity,
            fmt::format("certificate serial {} certifies a gateway, not an agent or a backend", cert.serial));
    if (auto problem = identity::validity_problem(cert, now_s, skew_s, "the gateway's time"))
        return protocol::protocol_error(Reason::certificate_expired, *problem);
    AuthorizedIdentity out;
    out.key = key;
    out.id = cert.id;
    out.role = cert.role == identity::CertificateRole::backend ? Role::backend : Role::agent;
    out.publish_narrowing = cert.publish_narrowing;
    out.subscribe_narrowing = cert.subscribe_narrowing;
    out.comment = fmt::format("certificate serial {} by CA {}", cert.serial, crypto::fingerprint(cert.ca_key));
    out.line = authorities_.at(cert.ca_key);
    out.certificate = cert;
    return out;
}

AuthorizedKeys::Added AuthorizedKeys::add(AuthorizedIdentity identity, std::string_view file_name) {
    Added out;
    const auto held = keys_of_id_.find(identity.id);
    const AuthorizedIdentity* other = nullptr;  // another key's line with this id
    if (held != keys_of_id_.end()) {
        for (const auto& key : held->second) {
            if (key != identity.key) {
                other = &by_key_.at(key);
                break;
            }
        }
    }
    if (other != nullptr && (other->role != identity.role || other->publish_narrowing != identity.publish_narrowing ||
                             other->subscribe_narrowing != identity.subscribe_narrowing)) {
        out.error = fmt::format(
            "{}:{}: id '{}' already belongs to another key (line {}) with another role or channel restrictions; "
            "the keys of one id (a key rollover) must be granted the same",
            file_name, identity.line, identity.id, other->line);
        return out;
    }
    std::vector<std::string> notes;
    if (const auto found = by_key_.find(identity.key); found != by_key_.end()) {
        notes.push_back(fmt::format("key {} already listed on line {}; this line replaces it",
                                    crypto::fingerprint(identity.key), found->second.line));
        auto& keys = keys_of_id_[found->second.id];  // the key may come back under another id
        keys.erase(std::remove(keys.begin(), keys.end(), identity.key), keys.end());
        if (keys.empty()) keys_of_id_.erase(found->second.id);
    }
    if (other != nullptr) {
        notes.push_back(
            fmt::format("id '{}' is also held by the key on line {} (a key rollover: remove the old "
                        "key's line once the new key is in use)",
                        identity.id, other->line));
    }
    if (!notes.empty()) out.warning = fmt::format("{}:{}: {}", file_name, identity.line, fmt::join(notes, "; "));
    auto& keys = keys_of_id_[identity.id];
    if (std::find(keys.begin(), keys.end(), identity.key) == keys.end()) keys.push_back(identity.key);
    by_key_[identity.key] = std::move(identity);
    return out;
}

std::vector<crypto::PublicKey> AuthorizedKeys::authority_keys() const {
    std::vector<crypto::PublicKey> out;
    for (const auto& [key, line] : authorities_) out.push_back(key);
    return out;
}

const AuthorizedIdentity* AuthorizedKeys::find(const crypto::PublicKey& key) const {
    const auto found = by_key_.find(key);
    return found == by_key_.end() ? nullptr : &found->second;
}

std::vector<const AuthorizedIdentity*> AuthorizedKeys::identities() const {
    std::vector<const AuthorizedIdentity*> out;
    out.reserve(by_key_.size());
    for (const auto& entry : by_key_) out.push_back(&entry.second);
    std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) { return a->line < b->line; });
    return out;
}

AuthorizedKeys parse_authorized_keys(std::string_view text, std::string_view file_name) {
    AuthorizedKeys keys;
    std::size_t line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        const auto raw = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        start = end == std::string_view::npos ? text.size() : end + 1;
        ++line_number;

        const auto line = trim_blanks(raw);
        if (line.empty() || line.front() == '#') continue;
        if (line.starts_with("@cert-authority")) {
            auto ca = parse_authority_line(line);
            if (!ca) {
                keys.errors.push_back(fmt::format("{}:{}: {}", file_name, line_number, ca.error().message));
                continue;
            }
            keys.add_authority(*ca, line_number);
            continue;
        }
        auto parsed = parse_authorized_line(line);
        if (!parsed) {
            keys.errors.push_back(fmt::format("{}:{}: {}", file_name, line_number, parsed.error().message));
            continue;
        }
        parsed->line = line_number;
        auto added = keys.add(std::move(parsed.value()), file_name);
        if (added.warning) keys.warnings.push_back(std::move(*added.warning));
        if (added.error) keys.errors.push_back(std::move(*added.error));
    }
    return keys;
}

Result<AuthorizedKeys> load_authorized_keys(const std::filesystem::path& file) {
    auto text = read_line_file(file, "authorized file");
    if (!text) return text.take_error();
    auto keys = parse_authorized_keys(*text, file.string());
    if (!keys.errors.empty()) return bad_lines_error("authorized file", file.string(), keys.errors);
    keys.text = std::move(text.value());
    return keys;
}

}  // namespace aegis::gateway
