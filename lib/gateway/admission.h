#pragma once
// Who is connected: every connection the gateway accepted and, per identity, the one session
// that holds it once its handshake is done. The session cap is judged here; who a key is
// (the authorized file, certificates, revocations) is decided before.

#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/backplane.h"
#include "gateway/metrics.h"

namespace aegis::gateway {

class GatewaySession;

class Admission {
public:
    Admission(std::size_t max_sessions, GatewayMetrics& counters);

    [[nodiscard]] SessionHandle next_handle() { return next_handle_++; }
    // A new connection, before its handshake.
    void accepted(std::shared_ptr<GatewaySession> session);
    // busy when max_sessions are open, unless the key holds one already (its newer session replaces it).
    [[nodiscard]] Result<void> admit(const crypto::PublicKey& key) const;
    // The session finished its handshake: it holds its identity from now on.
    void established(const std::shared_ptr<GatewaySession>& session);
    // The connection is gone. True when the session held its identity (a replaced one no longer did).
    bool closed(const GatewaySession& session);

    [[nodiscard]] std::shared_ptr<GatewaySession> session_of(const crypto::PublicKey& key) const;
    // A copy: closing one of them changes the registry.
    [[nodiscard]] std::vector<std::shared_ptr<GatewaySession>> connections() const;

private:
    struct Connection {
        std::shared_ptr<GatewaySession> session;
        bool established = false;
    };
    std::size_t max_sessions_;
    GatewayMetrics& counters_;
    std::map<SessionHandle, Connection> connections_;
    std::map<crypto::PublicKey, SessionHandle> holder_;
    SessionHandle next_handle_ = 1;
};

}  // namespace aegis::gateway
