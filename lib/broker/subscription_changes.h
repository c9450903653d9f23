#pragma once
// The broker's subscription changes: which local subscribers the gateway has confirmed, the
// subscribe requests waiting for their turn, and the one pattern set given to the session and
// not yet answered. One change is in flight at a time, so each gateway answer belongs to exactly
// one subscriber; a change in flight is sent again after a reconnect. It owns that state and
// reaches the session and the local subscribers only through the two interfaces below, so unit
// tests drive it with fakes.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "broker/local_subscriptions.h"
#include "broker/waiter.h"
#include "channel/channel.h"
#include "core/result.h"
#include "ipc/messages.h"

namespace aegis::broker {

struct PendingSubscribe {
    Waiter waiter;
    std::uint64_t peer_id = 0;
    std::vector<std::string> patterns;
    std::string durable;  // the cursor to attach to once the gateway has the set; empty: live
    std::optional<std::vector<std::string>> previous;  // the cursor's patterns before; none: new cursor
};

// The one subscription set given to the session and not yet answered by the gateway.
struct SubscriptionChange {
    std::uint32_t request_id = 0;
    std::vector<std::string> set;
    std::optional<PendingSubscribe> adding;  // the subscriber this change is for, if any
};

// The session as the changes use it.
class SubscriptionSession {
public:
    virtual ~SubscriptionSession() = default;
    // Gives the session the whole set to ask the gateway for: the request id its answer will carry.
    [[nodiscard]] virtual std::uint32_t set_subscriptions(const std::vector<std::string>& set) = 0;
};

// The local side: the durable cursors' patterns (always in the set) and the answers.
class Subscribers {
public:
    virtual ~Subscribers() = default;
    [[nodiscard]] virtual std::vector<std::string> durable_patterns() const = 0;
    // The gateway's set covers the subscriber: a live one is answered, a durable one attached.
    virtual void subscribed(const PendingSubscribe& pending) = 0;
    // The session's policy does not allow the patterns: the subscriber is told so, and a durable
    // cursor's patterns go back to what they were.
    virtual void denied(const PendingSubscribe& pending, const ipc::WireError& error) = 0;
    // The gateway refused the set that added the subscriber: it is told so, and a durable
    // cursor's patterns go back to what they were.
    virtual void refused(const PendingSubscribe& pending, const ipc::WireError& error) = 0;
};

// The first pattern `policy` does not let its identity subscribe to, if any.
[[nodiscard]] std::optional<std::string> refused_pattern(const channel::AccessPolicy& policy,
                                                         const std::vector<std::string>& patterns);
[[nodiscard]] ipc::WireError access_denied(const channel::AccessPolicy& policy, std::string_view pattern);

class SubscriptionChanges {
public:
    // Waits for its turn: advance() sends it.
    void request(PendingSubscribe pending) { waiting_.push_back(std::move(pending)); }
    // Answers what the confirmed set already covers and gives the session the next change, unless
    // one is in flight. `policy`: the session's, when it was granted one.
    void advance(const channel::AccessPolicy* policy, SubscriptionSession& session, Subscribers& subscribers);
    // The gateway answered a change: the set it refused (for the log), or none when it accepted
    // it or the answer is not for the change in flight. advance() sends what comes next.
    [[nodiscard]] std::optional<std::vector<std::string>> answered(std::uint32_t request_id,
                                                                   const Result<void>& outcome,
                                                                   Subscribers& subscribers);
    // A new session: the change in flight goes again, with a request id of this session.
    void resend(SubscriptionSession& session);
    // A local subscriber left: true when the set narrows (advance() sends it).
    [[nodiscard]] bool forget(SubscriberId subscriber);
    // The durable cursors' patterns changed: the next advance() gives the session the new set.
    void cursors_changed() { dirty_ = true; }

    // The subscribers still waiting for their turn (every one, or the live ones), no longer waiting here.
    [[nodiscard]] std::vector<PendingSubscribe> take_waiting();
    [[nodiscard]] std::vector<PendingSubscribe> take_waiting_live();

    [[nodiscard]] const LocalSubscriptions& confirmed() const { return confirmed_; }
    // The last set the gateway accepted.
    [[nodiscard]] const std::vector<std::string>& confirmed_set() const { return confirmed_set_; }
    [[nodiscard]] bool in_flight() const { return in_flight_.has_value(); }

private:
    void send(SubscriptionSession& session, std::vector<std::string> set, std::optional<PendingSubscribe> adding);

    LocalSubscriptions confirmed_;
    std::deque<PendingSubscribe> waiting_;
    std::optional<SubscriptionChange> in_flight_;
    std::vector<std::string> session_set_;    // last set given to the session
    std::vector<std::string> confirmed_set_;  // last set the gateway accepted
    bool dirty_ = false;                      // the set may have to narrow
};

}  // namespace aegis::broker
