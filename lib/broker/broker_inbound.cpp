// Subscriptions and delivery: local subscribers' patterns become one set on the session through
// the subscription changes (subscription_changes.h); delivered batches are deduplicated and
// fanned out to the subscribers whose patterns match.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "protocol/reason.h"

namespace aegis::broker {

using nlohmann::json;

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
    // Durable subscribers get "message" events: each carries its cursor_seq.
    if (request.batch && request.durable.empty()) batch_subscribers.insert(peer->id());
    subscription_changes.request(PendingSubscribe{waiter, peer->id(), std::move(request.patterns)});
    advance_subscriptions();
}

std::uint32_t Broker::Impl::SubscriptionSessionView::set_subscriptions(const std::vector<std::string>& set) {
    const auto request_id = impl.next_request_id();
    impl.session->set_subscriptions(request_id, set);
    return request_id;
}

void Broker::Impl::LocalSubscribers::subscribed(const PendingSubscribe& pending) {
    if (!pending.durable.empty()) {
        impl.attach_durable(pending);
        return;
    }
    impl.answer(pending.waiter, json{{"patterns", pending.patterns}});
}

void Broker::Impl::LocalSubscribers::denied(const PendingSubscribe& pending, const ipc::WireError& error) {
    // A durable cursor keeps none of the denied patterns, as when the gateway refuses them.
    refused(pending, error);
}

void Broker::Impl::LocalSubscribers::refused(const PendingSubscribe& pending, const ipc::WireError& error) {
    if (!pending.durable.empty()) {
        impl.refuse_durable(pending, error);
        return;
    }
    impl.fail(pending.waiter, error);
}

void Broker::Impl::advance_subscriptions() {
    if (stopping || !session) return;
    SubscriptionSessionView session_view(*this);
    LocalSubscribers subscribers(*this);
    subscription_changes.advance(policy ? &*policy : nullptr, session_view, subscribers);
}

void Broker::Impl::on_subscribe_result(std::uint32_t request_id, const Result<void>& outcome) {
    LocalSubscribers subscribers(*this);
    if (auto refused = subscription_changes.answered(request_id, outcome, subscribers)) {
        log(fmt::format("gateway refused subscription set [{}]: {}", fmt::join(*refused, " "),
                        outcome.error().message));
    }
    advance_subscriptions();
}

void Broker::Impl::forget_subscriber(std::uint64_t peer_id) {
    batch_subscribers.erase(peer_id);
    if (subscription_changes.forget(peer_id)) advance_subscriptions();
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
    // Stored (inboxes and delivered ids, one commit) before the gateway is told: after a crash
    // the gateway delivers again, and what was stored is neither lost nor shown twice.
    auto stored = store_delivery(fresh);
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
    for (const auto& envelope : fresh) channel_received(envelope.channel);
    // A verified batch has one channel and origin (§5); runs are split all the same, cheaply.
    for (std::size_t begin = 0, end = 0; begin < fresh.size(); begin = end) {
        for (end = begin + 1;
             end < fresh.size() && fresh[end].channel == fresh[begin].channel &&
             fresh[end].origin == fresh[begin].origin && fresh[end].origin_id == fresh[begin].origin_id;
             ++end) {
        }
        if (begin == 0 && end == fresh.size()) {
            fan_out(fresh);
        } else {
            fan_out(std::vector<protocol::Envelope>(
                std::make_move_iterator(fresh.begin() + static_cast<std::ptrdiff_t>(begin)),
                std::make_move_iterator(fresh.begin() + static_cast<std::ptrdiff_t>(end))));
        }
    }
    for (const auto& name : durable->attached()) send_backlog(name);
    return {};  // the session acknowledges it
}

// Messages that share their channel and origin: the subscribers are looked up once. A batch subscriber gets them in
// "messages" events, the others one "message" event each; every frame is encoded once and shared by the write queues.
void Broker::Impl::fan_out(const std::vector<protocol::Envelope>& fresh) {
    const auto subscribers = subscription_changes.confirmed().subscribers_for(fresh.front().channel);
    std::vector<std::shared_ptr<const Bytes>> batch_frames;
    std::vector<std::shared_ptr<const Bytes>> single_frames;
    for (const auto subscriber : subscribers) {
        const auto it = peers.find(subscriber);
        if (it == peers.end()) continue;
        const auto peer = it->second.lock();
        if (!peer) continue;
        const bool batch = batch_subscribers.count(subscriber) != 0;
        auto& frames = batch ? batch_frames : single_frames;
        if (frames.empty()) {
            if (batch) {
                for (auto& frame : ipc::message_batch_frames(fresh))
                    frames.push_back(std::make_shared<const Bytes>(std::move(frame)));
            } else {
                for (const auto& envelope : fresh)
                    frames.push_back(std::make_shared<const Bytes>(ipc::message_frame(envelope)));
            }
        }
        bool open = true;
        for (const auto& frame : frames) open = open && peer->send(frame);
        if (open) delivered_local += fresh.size();
    }
}

void Broker::Impl::on_rejected(std::uint64_t sequence, const Error& why) {
    // A relay altered the batch, or forged it: subscribers never see it, and the session acknowledges
    // it so that it is not delivered again forever.
    log(fmt::format("rejected delivery {} from the gateway: {}; acknowledged, not passed to subscribers", sequence,
                    why.message));
}

}  // namespace aegis::broker
