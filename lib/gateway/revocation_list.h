#pragma once
// The gateway's revocation list (aegis-gateway --revoked FILE, man aegis-gateway(1)): keys and
// certificate serials that are refused whatever the authorized file says. One entry a line:
//   aegis-ed25519 <base64> [comment]    a key, with or without a certificate
//   serial <N>                          every certificate with this serial
// '#' comments and blank lines are allowed. A file with any bad line is refused as a whole:
// skipping a line would un-revoke a key.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "core/result.h"
#include "crypto/primitives.h"
#include "identity/certificate.h"

namespace aegis::gateway {

class RevocationList {
public:
    [[nodiscard]] bool empty() const { return keys_.empty() && serials_.empty(); }
    [[nodiscard]] std::size_t size() const { return keys_.size() + serials_.size(); }
    // Why `key` (admitted with `certificate`, if any) is revoked, or nullopt when it is not.
    [[nodiscard]] std::optional<std::string> revokes(const crypto::PublicKey& key,
                                                     const std::optional<identity::Certificate>& certificate) const;

    void add_key(const crypto::PublicKey& key) { keys_.insert(key); }
    void add_serial(std::uint64_t serial) { serials_.insert(serial); }
    [[nodiscard]] const std::set<crypto::PublicKey>& keys() const { return keys_; }
    [[nodiscard]] const std::set<std::uint64_t>& serials() const { return serials_; }

    std::string text;  // what load_revocation_list() read

private:
    std::set<crypto::PublicKey> keys_;
    std::set<std::uint64_t> serials_;
};

// Parses a whole file's text. ExitCode::bad_input listing every bad line as "NAME:LINE: what".
[[nodiscard]] Result<RevocationList> parse_revocation_list(std::string_view text, std::string_view file_name);
// Reads and parses FILE; ExitCode::bad_input when it is missing, unreadable or has a bad line.
[[nodiscard]] Result<RevocationList> load_revocation_list(const std::filesystem::path& file);

}  // namespace aegis::gateway
