#include "gateway/authorized_keys.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "channel/channel.h"
#include "identity/keyfile.h"

namespace aegis::gateway {

namespace {

constexpr std::string_view kBlanks = " \t\r";

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(kBlanks);
    return text.substr(first, last - first + 1);
}

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

bool AuthorizedIdentity::same_grant(const AuthorizedIdentity& other) const {
    return id == other.id && role == other.role && publish_narrowing == other.publish_narrowing &&
           subscribe_narrowing == other.subscribe_narrowing;
}

Result<AuthorizedIdentity> parse_authorized_line(std::string_view line) {
    line = trim(line);
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

    auto key = identity::parse_public_key_line(trim(line.substr(blank)));
    if (!key) return bad_line(key.error().message);
    identity.key = key->key;
    identity.comment = key->comment;
    return identity;
}

std::optional<std::string> AuthorizedKeys::add(AuthorizedIdentity identity, std::string_view file_name) {
    if (const auto owner = key_of_id_.find(identity.id); owner != key_of_id_.end() && owner->second != identity.key) {
        return fmt::format("{}:{}: id '{}' already belongs to another key (line {}); line skipped", file_name,
                           identity.line, identity.id, by_key_.at(owner->second).line);
    }
    std::optional<std::string> warning;
    if (const auto found = by_key_.find(identity.key); found != by_key_.end()) {
        warning = fmt::format("{}:{}: key {} already listed on line {}; this line replaces it", file_name,
                              identity.line, crypto::fingerprint(identity.key), found->second.line);
        key_of_id_.erase(found->second.id);  // the key may come back under another id
    }
    key_of_id_[identity.id] = identity.key;
    by_key_[identity.key] = std::move(identity);
    return warning;
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

        const auto line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        auto parsed = parse_authorized_line(line);
        if (!parsed) {
            keys.warnings.push_back(
                fmt::format("{}:{}: {}; line skipped", file_name, line_number, parsed.error().message));
            continue;
        }
        parsed->line = line_number;
        if (auto warning = keys.add(std::move(parsed.value()), file_name)) keys.warnings.push_back(std::move(*warning));
    }
    return keys;
}

Result<AuthorizedKeys> load_authorized_keys(const std::filesystem::path& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        return make_error(ExitCode::bad_input, "cannot read authorized file {}: is a directory", file.string());
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return make_error(ExitCode::bad_input, "cannot read authorized file {}: {}", file.string(),
                          std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return make_error(ExitCode::bad_input, "cannot read authorized file {}", file.string());
    return parse_authorized_keys(text.str(), file.string());
}

}  // namespace aegis::gateway
