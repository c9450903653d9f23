#pragma once
// The gateway's authorized-keys file (man aegis-gateway(1)), ssh authorized_keys style:
//   role=agent,id=host42[,pub=PATTERN][,sub=PATTERN] aegis-ed25519 <base64> [comment]
//   @cert-authority aegis-ed25519 <base64> [comment]   (trusts the certificates of an operator CA)
// '#' comments and blank lines are allowed. A bad line makes the whole file bad (exit 6 at start,
// not applied on SIGHUP): skipping it would revoke a host. A key listed twice is a warning; an id
// on the lines of several keys (a key rollover) is a warning when they grant the same, else an error.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "core/role.h"
#include "crypto/primitives.h"
#include "identity/certificate.h"

namespace aegis::gateway {

struct AuthorizedIdentity {
    crypto::PublicKey key{};
    std::string id;
    Role role = Role::agent;
    std::optional<std::string> publish_narrowing;    // pub=
    std::optional<std::string> subscribe_narrowing;  // sub=
    std::string comment;
    std::size_t line = 0;
    // Set when the identity was admitted by an operator CA's certificate rather than a key line.
    std::optional<identity::Certificate> certificate;

    // Same id, role and narrowing: a reload leaves a session of this identity alone.
    [[nodiscard]] bool same_grant(const AuthorizedIdentity& other) const;
};

class AuthorizedKeys {
public:
    // What add() said about a line: a warning (it applies), or an error (it was refused).
    struct Added {
        std::optional<std::string> warning;
        std::optional<std::string> error;
    };
    // Adds one parsed entry, resolving duplicates: a key seen before is replaced (later line
    // wins, a warning); an id that already belongs to another key is shared (a key rollover, a
    // warning) when both lines grant the same role and narrowing, and refused (an error) when not.
    [[nodiscard]] Added add(AuthorizedIdentity identity, std::string_view file_name);

    [[nodiscard]] const AuthorizedIdentity* find(const crypto::PublicKey& key) const;
    // Trusts the certificates signed by this CA key (an "@cert-authority" line).
    void add_authority(const crypto::PublicKey& ca, std::size_t line);
    [[nodiscard]] std::size_t authorities() const { return authorities_.size(); }
    [[nodiscard]] std::vector<crypto::PublicKey> authority_keys() const;
    // Who `key` is: its key line if the file lists it (a line wins over a certificate), else the
    // identity its `certificate` (PROTOCOL.md §2.1; may be empty) grants when a trusted CA signed
    // it for this key and it is valid at Unix second `now_s`, give or take `skew_s`. Refusals carry
    // protocol reasons: unknown_identity, or certificate_expired naming the dates.
    [[nodiscard]] Result<AuthorizedIdentity> authorize(const crypto::PublicKey& key, ByteView certificate,
                                                       std::uint64_t now_s, std::uint64_t skew_s) const;
    [[nodiscard]] std::size_t size() const { return by_key_.size(); }
    // In file order of the line that now defines each key.
    [[nodiscard]] std::vector<const AuthorizedIdentity*> identities() const;

    std::vector<std::string> warnings;  // "FILE:LINE: what": the file still applies
    std::string text;                   // what load_authorized_keys() read
    std::vector<std::string> errors;    // "FILE:LINE: what": the file must not be applied

private:
    std::map<crypto::PublicKey, AuthorizedIdentity> by_key_;
    // Each id's keys in the order their lines came, for add().
    std::map<std::string, std::vector<crypto::PublicKey>, std::less<>> keys_of_id_;
    std::map<crypto::PublicKey, std::size_t> authorities_;  // CA key -> its line
};

// Parses an "@cert-authority aegis-ed25519 <base64> [comment]" line: the CA's key.
[[nodiscard]] Result<crypto::PublicKey> parse_authority_line(std::string_view line);

// Parses one non-comment line (without its newline). ExitCode::bad_input saying what is wrong.
[[nodiscard]] Result<AuthorizedIdentity> parse_authorized_line(std::string_view line);

// Parses a whole file's text; `file_name` prefixes the warnings and errors.
[[nodiscard]] AuthorizedKeys parse_authorized_keys(std::string_view text, std::string_view file_name);

// Reads and parses FILE. ExitCode::bad_input when it is missing or unreadable, or has a bad line
// (every bad line named with its number).
[[nodiscard]] Result<AuthorizedKeys> load_authorized_keys(const std::filesystem::path& file);

}  // namespace aegis::gateway
