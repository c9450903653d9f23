#pragma once
// The gateway's authorized-keys file (man aegis-gateway(1)), ssh authorized_keys style:
//   role=agent,id=host42[,pub=PATTERN][,sub=PATTERN] aegis-ed25519 <base64> [comment]
// '#' comments and blank lines are allowed. A bad line is skipped with a warning
// ("FILE:LINE: what"), never fatal to the other lines.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/role.h"
#include "crypto/primitives.h"

namespace aegis::gateway {

struct AuthorizedIdentity {
    crypto::PublicKey key{};
    std::string id;
    Role role = Role::agent;
    std::optional<std::string> publish_narrowing;    // pub=
    std::optional<std::string> subscribe_narrowing;  // sub=
    std::string comment;
    std::size_t line = 0;

    // Same id, role and narrowing: a reload leaves a session of this identity alone.
    [[nodiscard]] bool same_grant(const AuthorizedIdentity& other) const;
};

class AuthorizedKeys {
public:
    // Adds one parsed entry, resolving duplicates: a key seen before is replaced (later line
    // wins); an id that already belongs to another key is refused. Returns a warning, if any.
    [[nodiscard]] std::optional<std::string> add(AuthorizedIdentity identity, std::string_view file_name);

    [[nodiscard]] const AuthorizedIdentity* find(const crypto::PublicKey& key) const;
    [[nodiscard]] std::size_t size() const { return by_key_.size(); }
    // In file order of the line that now defines each key.
    [[nodiscard]] std::vector<const AuthorizedIdentity*> identities() const;

    std::vector<std::string> warnings;

private:
    std::map<crypto::PublicKey, AuthorizedIdentity> by_key_;
    std::map<std::string, crypto::PublicKey, std::less<>> key_of_id_;  // each id's one key, for add()
};

// Parses one non-comment line (without its newline). ExitCode::bad_input saying what is wrong.
[[nodiscard]] Result<AuthorizedIdentity> parse_authorized_line(std::string_view line);

// Parses a whole file's text; `file_name` prefixes the warnings. Never fails as a whole.
[[nodiscard]] AuthorizedKeys parse_authorized_keys(std::string_view text, std::string_view file_name);

// Reads and parses FILE. ExitCode::bad_input when it is missing or unreadable.
[[nodiscard]] Result<AuthorizedKeys> load_authorized_keys(const std::filesystem::path& file);

}  // namespace aegis::gateway
