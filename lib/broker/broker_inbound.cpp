// Subscriptions and delivery: local subscribers' patterns become one set on the session, one
// change at a time so each gateway answer belongs to exactly one subscriber; delivered
// batches are deduplicated and fanned out to the subscribers whose patterns match.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "protocol/reason.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

// The first pattern the policy refuses, if any.
[[nodiscard]] std::optional<std::string> refused_pattern(const channel::AccessPolicy& policy,
                                                         const std::vector<std::string>& patterns) {
    for (const auto& pattern : patterns) {
        if (!policy.may_subscribe(pattern)) return pattern;
    }
    return std::nullopt;
}

[[nodiscard]] ipc::WireError access_denied(const channel::AccessPolicy& policy, std::string_view pattern) {
    return ipc::wire_error(
        protocol::Reason::access_denied,
        fmt::format("access denied: {} ({}) may not subscribe to {}", policy.id(), to_string(policy.role()), pattern),
        ExitCode::refused);
}

}  // namespace

void Broker::Impl::handle_subscribe(const std::shared_ptr<ipc::Peer>& peer, const json& id,
                                    ipc::SubscribeRequest request) {
    const Waiter waiter{peer, id};
    for (const auto& pattern : request.patterns) {
        if (auto valid = channel::validate_pattern(pattern); !valid) {
            fail(waiter,
                 ipc::wire_error(protocol::Reason::invalid_channel, valid.error().message, ExitCode::bad_input));
            return;
        }
    }
    if (policy) {
        if (auto refused = refused_pattern(*policy, request.patterns)) {
            fail(waiter, access_denied(*policy, *refused));
            return;
        }
    }
    if (state == session::State::refused) {
        fail(waiter, refusal_error());  // nothing would come: say why instead of waiting forever
        return;
    }
    pending_subscribes.push_back(PendingSubscribe{waiter, peer->id(), std::move(request.patterns)});
    advance_subscriptions();
}

void Broker::Impl::advance_subscriptions() {
    if (change_in_flight || stopping || !session) return;
    while (!pending_subscribes.empty()) {
        auto pending = std::move(pending_subscribes.front());
        pending_subscribes.pop_front();
        const auto peer = pending.waiter.peer.lock();
        if (!peer || !peer->is_open()) continue;
        if (policy) {
            if (auto refused = refused_pattern(*policy, pending.patterns)) {
                fail(pending.waiter, access_denied(*policy, *refused));
                continue;
            }
        }
        auto extra = durable_patterns();
        if (pending.durable.empty()) extra.insert(extra.end(), pending.patterns.begin(), pending.patterns.end());
        auto set = confirmed.gateway_set(extra);
        if (set == confirmed_set && session_set == confirmed_set) {
            // Already covered by what the gateway accepted: no round trip needed.
            if (!pending.durable.empty()) {
                attach_durable(pending);
                continue;
            }
            confirmed.add(pending.peer_id, pending.patterns);
            answer(pending.waiter, json{{"patterns", pending.patterns}});
            continue;
        }
        send_change(std::move(set), std::move(pending));
        return;
    }
    if (subscriptions_dirty) {
        subscriptions_dirty = false;
        auto set = confirmed.gateway_set(durable_patterns());
        if (set != session_set) send_change(std::move(set), std::nullopt);
    }
}

void Broker::Impl::send_change(std::vector<std::string> set, std::optional<PendingSubscribe> adding) {
    SubscriptionChange change;
    change.request_id = next_request_id();
    change.set = std::move(set);
    change.adding = std::move(adding);
    session_set = change.set;
    session->set_subscriptions(change.request_id, change.set);
    change_in_flight = std::move(change);
}

void Broker::Impl::on_subscribe_result(std::uint32_t request_id, const Result<void>& outcome) {
    if (!change_in_flight || change_in_flight->request_id != request_id) return;
    auto change = std::move(*change_in_flight);
    change_in_flight.reset();
    if (outcome) {
        confirmed_set = change.set;
        if (change.adding) {
            const auto peer = change.adding->waiter.peer.lock();
            if (!change.adding->durable.empty()) {
                if (peer && peer->is_open()) attach_durable(*change.adding);
            } else if (peer && peer->is_open()) {
                confirmed.add(change.adding->peer_id, change.adding->patterns);
                answer(change.adding->waiter, json{{"patterns", change.adding->patterns}});
            } else {
                subscriptions_dirty = true;  // its subscriber left meanwhile: narrow the set again
            }
        }
    } else {
        log(fmt::format("gateway refused subscription set [{}]: {}", fmt::join(change.set, " "),
                        outcome.error().message));
        if (change.adding && !change.adding->durable.empty()) {
            refuse_durable(*change.adding, ipc::to_wire(outcome.error()));
        } else if (change.adding) {
            fail(change.adding->waiter, ipc::to_wire(outcome.error()));
        }
        subscriptions_dirty = true;  // give the session back the set the gateway last accepted
    }
    advance_subscriptions();
}

void Broker::Impl::forget_subscriber(std::uint64_t peer_id) {
    if (!confirmed.contains(peer_id)) return;
    confirmed.remove(peer_id);
    subscriptions_dirty = true;
    advance_subscriptions();
}

Result<void> Broker::Impl::on_deliver(std::uint64_t sequence, protocol::SignedBatch batch) {
    std::vector<protocol::Envelope> fresh;
    for (auto& envelope : batch.messages) {
        if (!delivered->first_sight(envelope.id)) {
            ++duplicates;
            continue;
        }
        fresh.push_back(std::move(envelope));
    }
    // Stored (inboxes, then the delivered ids) before the gateway is told: after a crash the
    // gateway delivers again, and what was stored is neither lost nor shown twice.
    auto stored = store_for_cursors(fresh);
    if (stored) stored = delivered->flush();
    if (!stored) {
        // The session does not acknowledge it and reconnects after its backoff; the gateway then
        // delivers it again, which must not be taken for a duplicate.
        auto error = stored.take_error();
        error.message = fmt::format("cannot store delivered messages: {}", error.message);
        log(fmt::format("{} (delivery {}); not acknowledged, delivered again after the backoff", error.message,
                        sequence));
        delivered->forget_pending();
        if (!store_error) store_error_since_ms = unix_time_ms();
        store_error = error;
        return error;
    }
    if (store_error) {
        log("delivered messages are stored again");
        store_error.reset();
    }
    for (const auto& envelope : fresh) {
        channel_received(envelope.channel);
        const auto subscribers = confirmed.subscribers_for(envelope.channel);
        if (subscribers.empty()) continue;
        // Encoded once, shared by every subscriber's write queue.
        const auto frame = std::make_shared<const Bytes>(ipc::message_frame(envelope));
        for (const auto subscriber : subscribers) {
            const auto it = peers.find(subscriber);
            if (it == peers.end()) continue;
            if (auto peer = it->second.lock(); peer && peer->send(frame)) ++delivered_local;
        }
    }
    std::vector<std::string> names;
    for (const auto& [name, attachment] : attached) names.push_back(name);
    for (const auto& name : names) send_backlog(name);
    return {};  // the session acknowledges it
}

void Broker::Impl::on_rejected(std::uint64_t sequence, const Error& why) {
    // A relay altered the batch, or forged it: subscribers never see it, and the session acknowledges
    // it so that it is not delivered again forever.
    log(fmt::format("rejected delivery {} from the gateway: {}; acknowledged, not passed to subscribers", sequence,
                    why.message));
}

}  // namespace aegis::broker
