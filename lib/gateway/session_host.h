#pragma once
// What one gateway session needs from the gateway that owns it: admission, routing, metrics
// and the log. The seam between per-connection code and gateway-wide state.

#include <memory>
#include <string_view>

#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/metrics.h"

namespace aegis::gateway {

class GatewaySession;

class SessionHost {
public:
    virtual ~SessionHost() = default;
    // The identity a key is authorized as, or the refusal (unknown_identity, busy).
    [[nodiscard]] virtual Result<AuthorizedIdentity> admit(const crypto::PublicKey& key) = 0;
    // The session finished its handshake (an older session of the same identity is replaced).
    virtual void established(const std::shared_ptr<GatewaySession>& session) = 0;
    // The session's connection is gone; `why` is a short human reason.
    virtual void closed(GatewaySession& session, std::string_view why) = 0;
    virtual Backplane& backplane() = 0;
    virtual GatewayMetrics& metrics() = 0;
    virtual void log(std::string_view line) = 0;
};

}  // namespace aegis::gateway
