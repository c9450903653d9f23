#pragma once
// The known_backends file of trust on first use (like ssh's known_hosts with accept-new):
// one line per gateway URL, "URL aegis-ed25519 <base64>"; '#' starts a comment.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "crypto/primitives.h"
#include "net/websocket.h"

namespace aegis::broker {

// The URL as known_backends records it: scheme://host:port/path, whatever the user typed.
[[nodiscard]] std::string canonical_url(const net::Url& url);

// The keys pinned for `url`, one per line naming it (several while the gateway rolls its key
// over: any one is accepted); empty when the file or the lines are missing. ExitCode::bad_input
// for an unreadable file or a malformed line.
[[nodiscard]] Result<std::vector<crypto::PublicKey>> find_known_backends(const std::filesystem::path& file,
                                                                         std::string_view url);
// Appends "URL aegis-ed25519 <base64>" (file created 0600).
[[nodiscard]] Result<void> record_known_backend(const std::filesystem::path& file, std::string_view url,
                                                const crypto::PublicKey& key);

}  // namespace aegis::broker
