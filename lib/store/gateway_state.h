#pragma once
// The gateway's state, as the gateway needs it (DESIGN.md §7): per authorized identity, a
// session token, the subscription set it last had and an inbox of routed batches it has not
// acknowledged. Inbox sequence numbers are per identity, increase and never repeat (gaps
// allowed), so they double as the deliver sequence across reconnects and restarts.
// Everything is a value; results come through a completion that may run later (a networked
// store) or before the call returns (the SQLite file, store/sqlite_gateway_store.h).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"

namespace aegis::store {

using GatewayToken = std::array<std::uint8_t, 32>;

struct GatewayLimits {
    std::uint64_t max_messages = 100'000;                // per identity; past it the oldest are dropped
    std::uint64_t max_age_ms = 7ULL * 24 * 3600 * 1000;  // inbox entries and session tokens expire
};

// What opening a session of an identity finds (PROTOCOL.md §3.5).
struct OpenedSession {
    GatewayToken token{};               // to give the client: the presented one when it was valid, else a new one
    bool resumed = false;               // the presented token was the identity's and not expired
    std::uint64_t acknowledged = 0;     // highest deliver_ack stored: where delivery resumes
    std::vector<std::string> patterns;  // the identity's stored subscription set
};

// An identity whose stored subscription set has patterns matching a channel.
struct Subscriber {
    crypto::PublicKey key{};
    std::string id;
    std::vector<std::string> patterns;  // those of its set that match the channel
};

struct StoredBatch {
    std::uint64_t sequence = 0;
    std::string channel;
    Bytes batch;
    std::uint64_t messages = 0;
    std::uint64_t stored_ms = 0;
};

// One published batch to append to each recipient's inbox.
struct InboxAppend {
    std::string channel;
    Bytes batch;
    std::uint64_t messages = 0;
    std::vector<crypto::PublicKey> recipients;  // may be empty: see StateCommit::route
    crypto::PublicKey origin{};                 // the publisher, never its own recipient
};

// An append's recipients from the store's view of the subscription sets as it is now.
using Router = std::function<std::vector<crypto::PublicKey>(const InboxAppend& append)>;

// Everything one commit stores, all or nothing, with the session tokens opened or closed since the last one.
struct StateCommit {
    std::vector<InboxAppend> appends;
    std::map<crypto::PublicKey, std::uint64_t> acknowledgements;  // everything up to the sequence was received
    bool survive_power_loss = true;  // false: a process crash only (tokens, acks, requests and replies)
    std::uint64_t now_ms = 0;
    // Routes the appends again. The recipients were chosen from subscribers() just before
    // commit(); a store whose view of the sets can lag behind another gateway's change (Redis)
    // finds out inside its atomic commit, catches up and routes again with this, so that a
    // subscription acknowledged anywhere before the commit is never missed. Unset: never.
    Router route;
};

struct CommitOutcome {
    std::map<std::string, std::uint64_t> dropped_full;  // per identity id: oldest messages dropped (max_messages)
};

struct InboxTotals {
    std::uint64_t messages = 0;    // waiting in every inbox
    std::uint64_t identities = 0;  // known identities
};

// One identity as the store knows it, for the gateway's fleet view (GET /sessions).
struct IdentitySummary {
    std::string id;
    std::uint64_t pending = 0;       // messages waiting in its inbox
    std::uint64_t last_seen_ms = 0;  // its last session's start or end (Unix ms; 0: never)
};

template <class T>
using Completion = std::function<void(Result<T>)>;

// What another gateway sharing the store did that concerns a session held by this one.
struct StoreEvents {
    std::function<void(const crypto::PublicKey& key)> inbox_grew;        // batches stored for the identity
    std::function<void(const crypto::PublicKey& key)> opened_elsewhere;  // a newer session of it elsewhere
    // Another gateway sharing the store reloaded its files (SIGHUP): reload this one's too.
    std::function<void(const std::string& node)> reload_asked;
};

class GatewayState {
public:
    virtual ~GatewayState() = default;

    // Opens a session of the identity (creating the identity if new) with the token it presented:
    // resumed when that token is valid, else a new token. The token's use reaches the store with
    // the next commit(); a token lost in a crash only turns the next resumption into a fresh session.
    virtual void open_session(const crypto::PublicKey& key, const std::string& id, const GatewayToken& presented,
                              std::uint64_t now_ms, Completion<OpenedSession> done) = 0;
    // The identity's session ended now (token expiry counts from here); stored with the next commit().
    virtual void session_closed(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                                std::uint64_t now_ms) = 0;
    // The identity's subscription set becomes `patterns`. Once `done` succeeds every gateway
    // sharing the store routes by it (the gateway sends the suback then, PROTOCOL.md §6).
    virtual void save_subscriptions(const crypto::PublicKey& key, const std::string& id,
                                    const std::vector<std::string>& patterns, Completion<void> done) = 0;
    // Every identity with stored patterns matching `channel`, from the store's view of the sets.
    [[nodiscard]] virtual std::vector<Subscriber> subscribers(std::string_view channel) const = 0;
    // Stores `commit` and the sessions opened or closed since the last commit, all or nothing.
    virtual void commit(StateCommit commit, Completion<CommitOutcome> done) = 0;
    // Up to `limit` inbox entries of the identity after `after`, in order.
    virtual void read_after(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                            Completion<std::vector<StoredBatch>> done) = 0;
    // Deletes entries stored before now - max_age: the messages removed per identity id.
    virtual void expire(std::uint64_t now_ms, Completion<std::map<std::string, std::uint64_t>> done) = 0;
    // For the gauge and the start-up line: read when asked, not per commit.
    [[nodiscard]] virtual InboxTotals totals() const = 0;
    // Every identity the store knows, for the fleet view: read when asked.
    [[nodiscard]] virtual std::map<crypto::PublicKey, IdentitySummary> identities() const = 0;
    // Succeeds when the store answers a read now (the gateway's readiness, GET /readyz).
    virtual void probe(Completion<void> done) = 0;
    // Other gateways' doings, for a store that several share; a store of one gateway has none.
    virtual void watch(StoreEvents events) { (void)events; }
    // This gateway reloaded its files: the others sharing the store are asked to (reload_asked).
    virtual void announce_reload() {}
    // Shutting down: a networked store lets go of the event loop once what it was asked is answered.
    virtual void close() {}
};

}  // namespace aegis::store
