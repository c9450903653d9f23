#pragma once
// The fleet view of the admin endpoint (GET /sessions, man aegis-gateway(1) ADMIN ENDPOINT): every
// identity the gateway knows — listed in the authorized file, connected, or with state in its
// store — with whether it is connected, since when, from where, when it was last seen and how
// many messages wait for it, and the software version a connected broker reported (PROTOCOL.md §3.1). JSON, for
// aegis-stat --fleet and for scripts.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "store/gateway_state.h"

namespace aegis::gateway {

class GatewaySession;

// {"sessions": [...], "connected": N, "known": N}; entries sorted by id, then fingerprint.
[[nodiscard]] std::string render_sessions(const AuthorizedKeys& authorized,
                                          const std::vector<std::shared_ptr<GatewaySession>>& connections,
                                          const std::map<crypto::PublicKey, store::IdentitySummary>& stored,
                                          std::uint64_t now_ms);

}  // namespace aegis::gateway
