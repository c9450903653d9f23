#pragma once
// What the running gateway applied, kept in its state directory so that --check-config can say
// what a reload would change before it is made (sshd -t tells only whether a file parses): the
// authorized file's text as last applied (STATE_DIR/authorized.applied) and the revocation
// list's (STATE_DIR/revoked.applied). Written at start and after every successful reload.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gateway/authorized_keys.h"
#include "gateway/revocation_list.h"

namespace aegis::gateway {

inline constexpr std::string_view kAppliedAuthorized = "authorized.applied";
inline constexpr std::string_view kAppliedRevoked = "revoked.applied";

// Replaces both copies (mode 0600) with the text the gateway now applies; a gateway without a
// revocation list records an empty one.
[[nodiscard]] Result<void> record_applied(const std::filesystem::path& state_dir, const AuthorizedKeys& keys,
                                          const RevocationList& revoked);

// Who may connect: an authorized file and a revocation list, as read from disk.
struct AppliedFiles {
    AuthorizedKeys keys;
    RevocationList revoked;
};

// Reads AUTHORIZED and, unless REVOKED is empty, the revocation list; the first bad file fails
// (ExitCode::bad_input naming every bad line of it).
[[nodiscard]] Result<AppliedFiles> load_access_files(const std::filesystem::path& authorized,
                                                     const std::filesystem::path& revoked);

// The copies in STATE_DIR; nullopt when no gateway recorded them there.
[[nodiscard]] Result<std::optional<AppliedFiles>> read_applied(const std::filesystem::path& state_dir);

// What applying `after` in place of `before` changes, one line per key, CA or revocation:
//   add id=web3 role=agent SHA256:...          a key line that is new
//   revoke id=host42 role=agent SHA256:...     a key line that is gone: its session closes
//   narrow|widen|change id=... SHA256:...: GRANT -> GRANT
//   trust CA SHA256:... / stop trusting CA SHA256:... (its certificates are refused)
//   revoke key SHA256:... [id=...] / revoke serial N / unrevoke key SHA256:... / unrevoke serial N
// Empty when nothing changes.
[[nodiscard]] std::vector<std::string> describe_changes(const AppliedFiles& before, const AppliedFiles& after);

}  // namespace aegis::gateway
