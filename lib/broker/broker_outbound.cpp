// Publishing: local checks, the outbound queue, signing batches, pubacks and refusals.

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "protocol/reason.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

[[nodiscard]] ipc::WireError refusal(std::string_view reason, std::string message, ExitCode exit) {
    return ipc::WireError{std::string(reason), std::move(message), exit};
}

[[nodiscard]] std::vector<protocol::Envelope> to_envelopes(std::vector<store::OutboundMessage> batch,
                                                           const crypto::PublicKey& origin,
                                                           const std::string& origin_id, std::uint64_t& sequence) {
    std::vector<protocol::Envelope> out;
    out.reserve(batch.size());
    for (auto& message : batch) {
        protocol::Envelope envelope;
        envelope.id = message.id;
        envelope.channel = std::move(message.channel);
        envelope.origin = origin;
        envelope.origin_id = origin_id;
        envelope.sequence = sequence++;
        envelope.timestamp_ms = message.timestamp_ms;
        envelope.expires_ms = message.expires_ms;
        envelope.priority = message.priority;
        envelope.kind = message.kind;
        envelope.correlation = message.correlation;
        envelope.headers = std::move(message.headers);
        envelope.payload = std::move(message.payload);
        out.push_back(std::move(envelope));
    }
    return out;
}

}  // namespace

// The first local check a publish of `count` messages fails (in the order PROTOCOL.md §8.3.2
// gives), if any: the same for one message or a batch, which is refused or queued whole.
std::optional<ipc::WireError> Broker::Impl::publish_refusal(const ipc::PublishRequest& request, std::size_t largest,
                                                            std::size_t count, std::uint64_t bytes) const {
    if (auto valid = channel::validate_name(request.channel); !valid)
        return refusal(protocol::name(protocol::Reason::invalid_channel), valid.error().message, ExitCode::bad_input);
    if (largest > protocol::kMaxPayloadBytes) {
        return refusal(protocol::name(protocol::Reason::too_large),
                       fmt::format("payload of {} bytes is over the limit of {}", largest, protocol::kMaxPayloadBytes),
                       ExitCode::refused);
    }
    // Refused now rather than queued and then refused by the gateway (a dead letter).
    if (!protocol::fits_one_batch(request.headers, largest)) {
        return refusal(protocol::name(protocol::Reason::too_large),
                       fmt::format("payload of {} bytes with its headers is over the batch limit of {} bytes", largest,
                                   protocol::kMaxBatchBytes),
                       ExitCode::refused);
    }
    if (policy && !policy->may_publish(request.channel)) {
        return refusal(protocol::name(protocol::Reason::access_denied),
                       fmt::format("access denied: {} ({}) may not publish to {}", policy->id(),
                                   to_string(policy->role()), request.channel),
                       ExitCode::refused);
    }
    if (request.wait_ack && state == session::State::refused) return refusal_error();  // no ack while refused
    if (request.wait_ack && state == session::State::stopped && last_error)
        return ipc::to_wire(*last_error);  // no ack will ever come
    if (stopping)
        return refusal(protocol::name(protocol::Reason::shutting_down), "the broker is stopping", ExitCode::failure);
    return check_capacity(count, bytes);
}

store::OutboundMessage Broker::Impl::new_message(const ipc::PublishRequest& request, Bytes payload) const {
    store::OutboundMessage message;
    message.timestamp_ms = unix_time_ms();
    message.id = protocol::new_message_id(message.timestamp_ms);
    message.channel = request.channel;
    message.priority = request.priority;
    message.kind = request.kind;
    if (request.correlation) message.correlation = *request.correlation;
    message.headers = request.headers;
    message.expires_ms = request.ttl_ms == 0 ? 0 : message.timestamp_ms + request.ttl_ms;
    message.payload = std::move(payload);
    return message;
}

void Broker::Impl::handle_publish(const std::shared_ptr<ipc::Peer>& peer, const json& id, ipc::PublishRequest request,
                                  Bytes payload) {
    PendingPublish pending;
    pending.waiter = Waiter{peer, id};
    pending.wait_ack = request.wait_ack;
    pending.refused = publish_refusal(request, payload.size(), 1, payload.size());
    if (!pending.refused) pending.messages.push_back(new_message(request, std::move(payload)));
    add_pending(std::move(pending));
}

void Broker::Impl::handle_publish_batch(const std::shared_ptr<ipc::Peer>& peer, const json& id,
                                        ipc::PublishBatchRequest request, Bytes payload) {
    PendingPublish pending;
    pending.waiter = Waiter{peer, id};
    pending.several = true;
    pending.message_ids = request.message_ids;
    std::uint64_t total = 0;
    std::size_t largest = 0;
    for (const auto length : request.lengths) {
        total += length;
        largest = std::max<std::size_t>(largest, length);
    }
    if (total != payload.size()) {
        pending.refused =
            refusal(ipc::name(ipc::LocalReason::invalid_field),
                    fmt::format("field 'lengths' adds up to {} bytes, but the payload has {}", total, payload.size()),
                    ExitCode::usage);
    } else {
        pending.refused = publish_refusal(request.fields, largest, request.lengths.size(), total);
    }
    if (!pending.refused) {
        pending.messages.reserve(request.lengths.size());
        std::size_t at = 0;
        for (const auto length : request.lengths) {
            const auto from = payload.begin() + static_cast<std::ptrdiff_t>(at);
            pending.messages.push_back(new_message(request.fields, Bytes(from, from + length)));
            at += length;
        }
    }
    add_pending(std::move(pending));
}

void Broker::Impl::add_pending(PendingPublish pending) {
    if (outbound_flow.add(std::move(pending))) {
        flush_publishes();
        return;
    }
    schedule_flush();
}

void Broker::Impl::schedule_flush() {
    if (flush_posted) return;
    flush_posted = true;
    // Everything that arrives in this turn of the event loop is committed together.
    boost::asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->flush_publishes();
    });
}

std::optional<ipc::WireError> Broker::Impl::check_capacity(std::size_t count, std::uint64_t bytes) const {
    const auto& limits = queue->limits();
    const std::size_t messages = queue->waiting() + queue->in_flight() + outbound_flow.pending_messages();
    const std::uint64_t stored = queue->live_bytes() + outbound_flow.pending_bytes();
    if (messages + count > limits.max_messages || stored + bytes > limits.max_bytes) {
        return refusal(ipc::name(ipc::LocalReason::queue_full),
                       fmt::format("queue full ({} messages / {} bytes queued, limit {} messages / {} bytes); "
                                   "nothing was dropped",
                                   messages, stored, limits.max_messages, limits.max_bytes),
                       ExitCode::failure);
    }
    return std::nullopt;
}

void Broker::Impl::schedule_removal() {
    if (removal_scheduled || stopping) return;
    removal_scheduled = true;
    removal_timer.expires_after(kRemovalDelay);
    removal_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self) return;
        self->removal_scheduled = false;
        if (!error && self->outbound_flow.has_unremoved()) self->flush_publishes();
    });
}

void Broker::Impl::flush_publishes() {
    flush_posted = false;
    if (!outbound_flow.has_commit_work()) return;
    // One commit for the turn: the new messages (fsync'd: the answers promise them, unless they
    // are all requests, replies and heartbeats: protocol::short_lived) and the removal of what the
    // gateway acknowledged meanwhile. The batches to send are taken afterwards, by pump(): taking
    // only reads the queue, since what is in flight is kept in memory.
    //
    // The log's sync comes after the batches are sent: the gateway stores and acknowledges them
    // while this disk flushes, instead of after it (a one-shot `aegis-send --wait-ack` waits for
    // both). The session's send is posted (net::Connection), so the sync and the answers
    // (settle_publishes) are posted behind it; no answer goes out before the sync: `queued` and
    // the message ids still promise that the messages survive a power loss.
    auto port = outbound_queue();
    database->defer_log_sync();
    auto flushed = outbound_flow.flush(port);
    const bool sync_owed = database->stop_deferring_log_sync();
    std::optional<ipc::WireError> store_failure;
    if (flushed.store_error) {
        log(fmt::format("cannot queue {} message(s): {}", flushed.messages, flushed.store_error->message));
        store_failure =
            refusal(ipc::name(ipc::LocalReason::store_failed), flushed.store_error->message, ExitCode::failure);
        last_error = *flushed.store_error;
    }
    if (flushed.removal_error) {
        log(fmt::format("cannot remove acknowledged messages: {}", flushed.removal_error->message));
    }
    if (!flushed.store_error) published_local += flushed.messages;
    // Waiting for its ack from now on: an ack cannot come before the sync below (the batch is
    // written after this handler), but if it did, the gateway has stored the message.
    if (!store_failure) {
        for (const auto& pending : flushed.group) {
            if (pending.awaits_ack()) outbound_flow.await_ack(pending.messages.front().id, pending.waiter);
        }
    }
    pump();
    unsettled.push_back(UnsettledPublishes{std::move(flushed.group), store_failure, flushed.messages, sync_owed});
    if (!sync_owed || stopping) {
        settle_publishes();
        return;
    }
    boost::asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->settle_publishes();
    });
}

void Broker::Impl::settle_publishes() {
    if (unsettled.empty()) return;
    auto groups = std::move(unsettled);
    unsettled.clear();
    const bool owed = std::any_of(groups.begin(), groups.end(), [](const auto& group) { return group.sync_owed; });
    std::optional<Error> sync_error;
    if (owed) {
        if (auto synced = database->sync_log(); !synced) {
            // Committed, maybe sent, maybe delivered: what reached the device is unknown.
            sync_error = synced.error();
            last_error = synced.error();
        }
    }
    for (auto& group : groups) {
        auto failure = group.failure;
        if (!failure && group.sync_owed && sync_error) {
            log(fmt::format("cannot sync {} queued message(s) to disk: {}", group.messages, sync_error->message));
            failure = refusal(ipc::name(ipc::LocalReason::store_failed),
                              fmt::format("{} (queued, but it may not survive a power loss)", sync_error->message),
                              ExitCode::failure);
            for (const auto& pending : group.publishes) {
                if (pending.awaits_ack()) (void)outbound_flow.take_waiter(pending.messages.front().id);
            }
        }
        answer_publishes(group.publishes, failure);
    }
}

void Broker::Impl::answer_publishes(std::vector<PendingPublish>& group, const std::optional<ipc::WireError>& failure) {
    for (auto& pending : group) {
        if (pending.refused) {
            fail(pending.waiter, *pending.refused);
        } else if (failure) {
            fail(pending.waiter, *failure);
        } else if (pending.several && !pending.message_ids) {
            answer(pending.waiter, json{{"count", pending.messages.size()}});
        } else if (pending.several) {
            json ids = json::array();
            for (const auto& message : pending.messages) ids.push_back(ipc::to_hex(message.id));
            answer(pending.waiter, json{{"message_ids", std::move(ids)}});
        } else if (pending.wait_ack) {
            // Queued now, acknowledged later: said at once, so that a tool that stops waiting for
            // the ack can name the message, which stays queued and is still delivered.
            if (auto peer = pending.waiter.peer.lock()) {
                peer->send(json{{"event", "queued"},
                                {"request", pending.waiter.request_id},
                                {"message_id", ipc::to_hex(pending.messages.front().id)}});
            }
        } else {
            answer(pending.waiter, json{{"message_id", ipc::to_hex(pending.messages.front().id)}});
        }
    }
}

void Broker::Impl::enqueue_heartbeat() {
    if (!grant || grant->role != Role::agent || stopping) return;  // backends have no heartbeat channel
    settle_removals();
    const auto stats = session->stats();
    const auto interval = config.session.heartbeat_interval.count() > 0 ? config.session.heartbeat_interval
                                                                        : std::chrono::milliseconds(30'000);
    const json status{
        {"uptime_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count()},
        {"queue_depth", queue->waiting() + queue->in_flight()},
        {"rtt_ms", std::chrono::duration<double, std::milli>(stats.last_rtt).count()},
        {"reconnects", stats.reconnects}};
    const auto text = status.dump();
    store::OutboundMessage message;
    message.timestamp_ms = unix_time_ms();
    message.id = protocol::new_message_id(message.timestamp_ms);
    message.channel = fmt::format("agent.{}.heartbeat", grant->assigned_id);
    message.priority = protocol::Priority::low;
    message.kind = protocol::Kind::heartbeat;
    message.headers = {{"content-type", "application/json"}};
    message.expires_ms =
        message.timestamp_ms + 2 * static_cast<std::uint64_t>(interval.count());  // stale ones are useless
    message.payload.assign(text.begin(), text.end());
    last_heartbeat_ms = message.timestamp_ms;
    if (check_capacity(1, message.payload.size())) return;  // a full queue keeps its room for the tools
    if (queue->push(std::move(message))) pump();
}

void Broker::Impl::pump() {
    if (!connected() || !grant || config.session.identity == nullptr || queue->waiting() == 0) return;
    if (outbound_flow.window_full()) return;
    // Taking writes nothing (what is in flight is kept in memory), so it needs no transaction;
    // it must not run inside one that could roll back, either: that would not un-take.
    auto port = outbound_queue();
    auto taken = outbound_flow.take(port, unix_time_ms(),
                                    [this](std::vector<store::OutboundMessage> batch, const BatchInFlight& flight) {
                                        return seal(std::move(batch), flight);
                                    });
    report_expired(taken.expired);
    if (taken.error) {
        log(fmt::format("cannot read the queue: {}", taken.error->message));
        last_error = *taken.error;
        schedule_retry();
    } else if (taken.backing_off) {
        schedule_retry();  // look again later
    }
    SessionPublisher publisher(*this);
    outbound_flow.send(std::move(taken.batches), publisher, port);
}

std::optional<protocol::SignedBatch> Broker::Impl::seal(std::vector<store::OutboundMessage> batch,
                                                        const BatchInFlight& flight) {
    if (defer_if_held(flight)) return std::nullopt;
    const auto& key = *config.session.identity;
    auto signed_batch = protocol::sign_batch(
        to_envelopes(std::move(batch), key.public_key(), grant->assigned_id, next_sequence), key, config.batch_format);
    if (!signed_batch) {
        log(fmt::format("dropped {} message(s) to {}: {}", flight.ids.size(), flight.channel,
                        signed_batch.error().message));
        dead_letter(flight.ids, signed_batch.error());
        return std::nullopt;
    }
    return std::move(*signed_batch);
}

std::optional<std::uint32_t> Broker::Impl::SessionPublisher::publish(const protocol::SignedBatch& batch) {
    const auto request_id = impl.next_request_id();
    if (!impl.session || !impl.session->publish(request_id, batch)) return std::nullopt;
    return request_id;
}

void Broker::Impl::on_publish_result(std::uint32_t request_id, const Result<void>& outcome) {
    settle_publishes();  // `queued` before `acked` (the sync is posted ahead of any ack anyway)
    auto answered = outbound_flow.answered(request_id);
    if (!answered) return;  // from before a reconnect: those were released and re-sent
    auto flight = std::move(*answered);
    if (outcome) {
        acked += flight.ids.size();
        channel_accepted(flight.channel, flight.ids.size());
        for (const auto& id : flight.ids) {
            if (auto waiter = outbound_flow.take_waiter(id))
                answer(*waiter, json{{"message_id", ipc::to_hex(id)}, {"acked", true}});
        }
        // Removed with the next commit (schedule_removal); the window has room now for more.
        outbound_flow.acknowledged(flight.ids);
        schedule_removal();
        pump();
        return;
    }
    const auto& error = outcome.error();
    if (protocol::reason_of(error) == protocol::Reason::no_responders) {
        // The gateway stored nothing of a batch no identity would receive (PROTOCOL.md §6): its
        // requests are void, their waiting requesters told at once; the rest is done, as a
        // puback would have it. None of it stays queued or becomes a dead letter.
        const auto wire = ipc::to_wire(error);
        for (const auto& id : flight.ids) {
            const auto waiter = outbound_flow.take_waiter(id);
            if (!waiter) continue;
            const bool request = std::find(flight.requests.begin(), flight.requests.end(), id) != flight.requests.end();
            if (request) {
                fail(*waiter, wire);
            } else {
                answer(*waiter, json{{"message_id", ipc::to_hex(id)}, {"acked", true}});
            }
        }
        acked += flight.ids.size() - flight.requests.size();
        outbound_flow.acknowledged(flight.ids);
        schedule_removal();
        pump();
        return;
    }
    if (protocol::reason_of(error) == protocol::Reason::channel_disabled) {
        hold_channel(std::move(flight), error, true);
        pump();  // the other channels go on
        return;
    }
    if (protocol::is_permanent(protocol::reason_of(error))) {
        log(fmt::format("gateway refused {} message(s) to {}: {}; kept as dead letters", flight.ids.size(),
                        flight.channel, error.message));
        dead_letter(flight.ids, error);
        pump();
        return;
    }
    log(fmt::format("gateway deferred {} message(s) to {}: {}; will retry with backoff", flight.ids.size(),
                    flight.channel, error.message));
    if (auto released = queue->release(flight.ids, unix_time_ms(), error.message); !released) {
        log(fmt::format("cannot release messages: {}", released.error().message));
    }
    if (config.max_attempts != 0) report_given_up(flight);
    schedule_retry();
}

// The messages of a deferred batch that reached --max-attempts are dead letters now.
void Broker::Impl::report_given_up(const BatchInFlight& flight) {
    std::size_t given_up = 0;
    std::string reason;
    for (const auto& id : flight.ids) {
        auto stored = queue->get(id);
        if (!stored || !*stored || (*stored)->entry.state != store::MessageState::dead) continue;
        ++given_up;
        reason = (*stored)->entry.dead_reason;
        if (auto waiter = outbound_flow.take_waiter(id))
            fail(*waiter, refusal(ipc::name(ipc::LocalReason::gave_up), reason, ExitCode::failure));
    }
    if (given_up == 0) return;
    dropped += given_up;
    log(fmt::format("{} message(s) to {} kept as dead letters: {}", given_up, flight.channel, reason));
}

void Broker::Impl::schedule_retry() {
    if (retry_scheduled || stopping) return;
    retry_scheduled = true;
    retry_timer.expires_after(kRetryDelay);
    retry_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self) return;
        self->retry_scheduled = false;
        if (!error) self->pump();
    });
}

void Broker::Impl::dead_letter(const std::vector<protocol::MessageId>& ids, const Error& cause) {
    if (auto stored = queue->dead_letter(ids, cause.message, unix_time_ms()); !stored) {
        log(fmt::format("cannot keep dead letters: {}", stored.error().message));
    }
    dropped += ids.size();
    const auto wire = ipc::to_wire(cause);
    for (const auto& id : ids) {
        if (auto waiter = outbound_flow.take_waiter(id)) fail(*waiter, wire);
    }
}

void Broker::Impl::report_expired(std::vector<store::OutboundMessage>& expired) {
    for (const auto& message : expired) {
        if (message.kind == protocol::Kind::heartbeat) {
            (void)queue->remove(message.id);  // a stale heartbeat is noise, not a dead letter
            continue;
        }
        ++dropped;
        log(fmt::format("message {} to {} expired before the gateway stored it; kept as a dead letter",
                        ipc::to_hex(message.id), message.channel));
        if (auto waiter = outbound_flow.take_waiter(message.id))
            fail(*waiter, ipc::to_wire(protocol::protocol_error(protocol::Reason::expired)));
    }
}

void Broker::Impl::expire_due() {
    std::vector<store::OutboundMessage> expired;
    if (auto done = queue->expire_due(unix_time_ms(), expired); !done) {
        log(fmt::format("cannot expire messages: {}", done.error().message));
    }
    report_expired(expired);
}

void Broker::Impl::fail_waiters(const Error& cause) {
    const auto wire = ipc::to_wire(cause);
    for (const auto& waiter : outbound_flow.take_waiters()) fail(waiter, wire);
}

}  // namespace aegis::broker
