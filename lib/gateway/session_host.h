#pragma once
// What one gateway session needs from the gateway that owns it: admission, routing, metrics
// and the log. The seam between per-connection code and gateway-wide state.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/metrics.h"
#include "protocol/handshake.h"
#include "store/gateway_store.h"

namespace aegis::gateway {

class GatewaySession;

// What a handshake resumes (PROTOCOL.md §3.5): the token to give, where delivery resumes, and
// whether the presented token was valid (false: a fresh session of the same identity).
struct ResumeGrant {
    protocol::SessionToken token{};
    std::uint64_t resume_point = 0;
    bool resumed = false;
    std::vector<std::string> patterns;  // the identity's stored subscription set
};

class SessionHost {
public:
    virtual ~SessionHost() = default;
    // The identity a key (with the certificate it sent, if any) is authorized as, or the refusal
    // (unknown_identity, certificate_expired, busy).
    [[nodiscard]] virtual Result<AuthorizedIdentity> admit(const crypto::PublicKey& key, ByteView certificate) = 0;
    // The session finished its handshake (an older session of the same identity is replaced).
    virtual void established(const std::shared_ptr<GatewaySession>& session) = 0;
    // The session's connection is gone; `why` is a short human reason.
    virtual void closed(GatewaySession& session, std::string_view why) = 0;
    // Looks up or issues the session token for an admitted identity (persisted).
    [[nodiscard]] virtual Result<ResumeGrant> resume(const AuthorizedIdentity& identity,
                                                     const protocol::SessionToken& presented) = 0;
    // Queues a verified batch for storing and routing in this event-loop turn's transaction;
    // the session is told (publish_stored) once it is committed. `fsync`: false when every
    // message is a request or reply (protocol::bounded_by_requester). `request`: a message of the
    // batch is a request, so a batch no identity would receive is refused with no_responders.
    virtual void publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                         Bytes batch, std::size_t messages, bool fsync, bool request) = 0;
    // deliver_ack: stored with the next group commit (losing it only means a redelivery).
    virtual void acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) = 0;
    // The session's subscription set changed: it becomes the identity's stored set.
    virtual void subscriptions_changed(const AuthorizedIdentity& identity,
                                       const std::vector<std::string>& patterns) = 0;
    // The identity's inbox after `after`, at most `limit` entries.
    [[nodiscard]] virtual Result<std::vector<store::StoredBatch>> inbox(const crypto::PublicKey& key,
                                                                        std::uint64_t after, std::size_t limit) = 0;
    // The channel control pattern that disables publishing to `channel`, or nullptr (PROTOCOL.md §7.1).
    [[nodiscard]] virtual const std::string* disabled_by(std::string_view channel) const = 0;
    virtual Backplane& backplane() = 0;
    virtual GatewayMetrics& metrics() = 0;
    virtual void log(std::string_view line) = 0;
};

}  // namespace aegis::gateway
