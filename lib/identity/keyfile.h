#pragma once
// Identity key files, with ssh-keygen's habits (PROTOCOL.md §2, man aegis-keygen(1)).
//   secret key: one line  "aegis-ed25519-secret <base64 of seed(32) || public key(32)> <comment>"
//               mode 0600; refused when group- or world-accessible
//   public key: one line  "aegis-ed25519 <base64 of public key(32)> <comment>"
// The comment is everything after the second field, trimmed; it may contain spaces.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"
#include "crypto/primitives.h"

namespace aegis::identity {

struct Identity {
    crypto::SigningKey key;
    std::string comment;
};

struct PublicIdentity {
    crypto::PublicKey key{};
    std::string comment;
};

inline constexpr std::string_view kSecretKeyType = "aegis-ed25519-secret";
inline constexpr std::string_view kPublicKeyType = "aegis-ed25519";
// A key file is one short line; anything larger is refused unread.
inline constexpr std::size_t kMaxKeyFileSize = 16 * 1024;

// $XDG_CONFIG_HOME/aegis/id_ed25519, else ~/.config/aegis/id_ed25519.
[[nodiscard]] std::filesystem::path default_key_path();
// PATH.pub beside a secret key file PATH.
[[nodiscard]] std::filesystem::path public_key_path(const std::filesystem::path& secret_path);
// "user@hostname", as ssh-keygen uses.
[[nodiscard]] std::string default_comment();
// A comment must keep the key file one line: printable text, no control characters.
[[nodiscard]] bool is_valid_comment(std::string_view comment);

// ExitCode::bad_input for a missing, unreadable, too-open, truncated or foreign file.
[[nodiscard]] Result<Identity> load_secret_key(const std::filesystem::path& path);
// Reads a public key file, or derives the public key from a secret key file.
[[nodiscard]] Result<PublicIdentity> load_public_key(const std::filesystem::path& path);
// A key given on the command line: a path to a public key file, or an "aegis-ed25519 <base64>
// [comment]" line, or the bare base64 key. A secret key file is refused (bad_input, naming its .pub).
[[nodiscard]] Result<PublicIdentity> resolve_public_key(std::string_view path_or_key);

// Surrounding whitespace (a trailing newline) is ignored; ExitCode::bad_input otherwise.
[[nodiscard]] Result<PublicIdentity> parse_public_key_line(std::string_view line);
// "aegis-ed25519 <base64> <comment>" without a newline (no trailing space when the comment is empty).
[[nodiscard]] std::string format_public_key_line(const crypto::PublicKey& key, std::string_view comment);

// Reads a small text file of public material (a certificate): a regular file of at most
// kMaxKeyFileSize bytes. ExitCode::bad_input naming the file and the reason otherwise.
[[nodiscard]] Result<std::string> read_public_file(const std::filesystem::path& path);
// Writes a file of public material (0644; parent created 0700), durably. Refuses to replace an
// existing file unless `overwrite` (ExitCode::bad_input, naming it).
[[nodiscard]] Result<void> write_public_file(const std::filesystem::path& path, std::string_view contents,
                                             bool overwrite);

// Writes PATH (0600; parent created 0700) and PATH.pub (0644). Refuses to replace an existing
// file unless `overwrite` (ExitCode::bad_input, naming the file); with `overwrite` each file is
// written beside its target and renamed over it. A file that cannot be written gives ExitCode::failure.
[[nodiscard]] Result<void> write_key_pair(const std::filesystem::path& path, const Identity& identity, bool overwrite);

}  // namespace aegis::identity
