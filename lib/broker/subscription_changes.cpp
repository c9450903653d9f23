#include "broker/subscription_changes.h"

#include <fmt/format.h>

#include "protocol/reason.h"

namespace aegis::broker {

namespace {

// Its client is still there to be answered.
[[nodiscard]] bool waiting(const PendingSubscribe& pending) {
    const auto peer = pending.waiter.peer.lock();
    return peer && peer->is_open();
}

}  // namespace

std::optional<std::string> refused_pattern(const channel::AccessPolicy& policy,
                                           const std::vector<std::string>& patterns) {
    for (const auto& pattern : patterns) {
        if (!policy.may_subscribe(pattern)) return pattern;
    }
    return std::nullopt;
}

ipc::WireError access_denied(const channel::AccessPolicy& policy, std::string_view pattern) {
    return ipc::wire_error(
        protocol::Reason::access_denied,
        fmt::format("access denied: {} ({}) may not subscribe to {}", policy.id(), to_string(policy.role()), pattern),
        ExitCode::refused);
}

void SubscriptionChanges::advance(const channel::AccessPolicy* policy, SubscriptionSession& session,
                                  Subscribers& subscribers) {
    if (in_flight_) return;
    while (!waiting_.empty()) {
        auto pending = std::move(waiting_.front());
        waiting_.pop_front();
        if (!waiting(pending)) continue;
        if (policy != nullptr) {
            if (auto refused = refused_pattern(*policy, pending.patterns)) {
                subscribers.denied(pending, access_denied(*policy, *refused));
                continue;
            }
        }
        auto extra = subscribers.durable_patterns();
        if (pending.durable.empty()) extra.insert(extra.end(), pending.patterns.begin(), pending.patterns.end());
        auto set = confirmed_.gateway_set(extra);
        if (set == confirmed_set_ && session_set_ == confirmed_set_) {
            // Already covered by what the gateway accepted: no round trip needed.
            if (pending.durable.empty()) confirmed_.add(pending.peer_id, pending.patterns);
            subscribers.subscribed(pending);
            continue;
        }
        send(session, std::move(set), std::move(pending));
        return;
    }
    if (dirty_) {
        dirty_ = false;
        auto set = confirmed_.gateway_set(subscribers.durable_patterns());
        if (set != session_set_) send(session, std::move(set), std::nullopt);
    }
}

void SubscriptionChanges::send(SubscriptionSession& session, std::vector<std::string> set,
                               std::optional<PendingSubscribe> adding) {
    SubscriptionChange change;
    change.set = std::move(set);
    change.adding = std::move(adding);
    session_set_ = change.set;
    change.request_id = session.set_subscriptions(change.set);
    in_flight_ = std::move(change);
}

std::optional<std::vector<std::string>> SubscriptionChanges::answered(std::uint32_t request_id,
                                                                      const Result<void>& outcome,
                                                                      Subscribers& subscribers) {
    if (!in_flight_ || in_flight_->request_id != request_id) return std::nullopt;
    auto change = std::move(*in_flight_);
    in_flight_.reset();
    if (!outcome) {
        if (change.adding) subscribers.refused(*change.adding, ipc::to_wire(outcome.error()));
        dirty_ = true;  // give the session back the set the gateway last accepted
        return std::move(change.set);
    }
    confirmed_set_ = change.set;
    if (!change.adding) return std::nullopt;
    if (waiting(*change.adding)) {
        if (change.adding->durable.empty()) confirmed_.add(change.adding->peer_id, change.adding->patterns);
        subscribers.subscribed(*change.adding);
    } else if (change.adding->durable.empty()) {
        dirty_ = true;  // its subscriber left meanwhile: narrow the set again
    }
    return std::nullopt;
}

void SubscriptionChanges::resend(SubscriptionSession& session) {
    // Whatever id the session re-sends with, the broker waits for the answer to its own.
    if (in_flight_) in_flight_->request_id = session.set_subscriptions(in_flight_->set);
}

bool SubscriptionChanges::forget(SubscriberId subscriber) {
    if (!confirmed_.contains(subscriber)) return false;
    confirmed_.remove(subscriber);
    dirty_ = true;
    return true;
}

std::vector<PendingSubscribe> SubscriptionChanges::take_waiting() {
    std::vector<PendingSubscribe> out(std::make_move_iterator(waiting_.begin()),
                                      std::make_move_iterator(waiting_.end()));
    waiting_.clear();
    return out;
}

std::vector<PendingSubscribe> SubscriptionChanges::take_waiting_live() {
    std::vector<PendingSubscribe> out;
    std::deque<PendingSubscribe> kept;
    for (auto& pending : waiting_) {
        if (pending.durable.empty()) {
            out.push_back(std::move(pending));
        } else {
            kept.push_back(std::move(pending));
        }
    }
    waiting_ = std::move(kept);
    return out;
}

}  // namespace aegis::broker
