#pragma once
// What one gateway session needs from the gateway that owns it: admission, the state store,
// the group commit, metrics and the log. The seam between per-connection code and gateway-wide state.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "gateway/metrics.h"
#include "protocol/handshake.h"
#include "store/gateway_state.h"

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
    // The same judgement without the session cap, for a probe that opens nothing (unknown_identity,
    // certificate_expired, revoked, shutting_down).
    [[nodiscard]] virtual Result<AuthorizedIdentity> judge(const crypto::PublicKey& key, ByteView certificate) = 0;
    // The session finished its handshake (an older session of the same identity is replaced).
    virtual void established(const std::shared_ptr<GatewaySession>& session) = 0;
    // The session's connection is gone; `why` is a short human reason.
    virtual void closed(GatewaySession& session, std::string_view why) = 0;
    // Opens the admitted identity's session in the state store with the token it presented:
    // `granted` gets the token to give and where delivery resumes, or why the store could not
    // open it (a store that cannot be reached; the SQLite file keeps tokens in memory until its
    // next commit, so it always answers).
    virtual void resume(const AuthorizedIdentity& identity, const protocol::SessionToken& presented,
                        std::function<void(Result<ResumeGrant>)> granted) = 0;
    // Queues a verified batch for storing and routing in this event-loop turn's commit; the
    // session is told (publish_stored) once it is committed (gateway/group_commit.h).
    virtual void publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                         Bytes batch, std::size_t messages, bool fsync, bool request) = 0;
    // deliver_ack: stored with the next group commit (losing it only means a redelivery).
    virtual void acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) = 0;
    // The session's subscription set changed: it becomes the identity's stored set. `saved` runs
    // once every gateway sharing the store routes by it (the suback waits for it, PROTOCOL.md §6).
    virtual void subscriptions_changed(const AuthorizedIdentity& identity, const std::vector<std::string>& patterns,
                                       std::function<void(Result<void>)> saved) = 0;
    // The identity's inbox after `after`, at most `limit` entries.
    virtual void inbox(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                       store::Completion<std::vector<store::StoredBatch>> done) = 0;
    // The channel control pattern that disables publishing to `channel`, or nullptr (PROTOCOL.md §7.1).
    [[nodiscard]] virtual const std::string* disabled_by(std::string_view channel) const = 0;
    virtual GatewayMetrics& metrics() = 0;
    virtual void log(std::string_view line) = 0;
};

}  // namespace aegis::gateway
