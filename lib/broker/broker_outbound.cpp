// Publishing: local checks, the outbound queue, signing batches, pubacks and refusals.

#include <fmt/format.h>

#include "broker/broker_impl.h"
#include "protocol/reason.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

[[nodiscard]] ipc::WireError refusal(std::string_view reason, std::string message, ExitCode exit) {
    return ipc::WireError{std::string(reason), std::move(message), exit};
}

[[nodiscard]] std::vector<protocol::Envelope> to_envelopes(std::vector<OutboundMessage> batch,
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

void Broker::Impl::handle_publish(const std::shared_ptr<ipc::Peer>& peer, const json& id, ipc::PublishRequest request,
                                  Bytes payload) {
    const Waiter waiter{peer, id};
    if (auto valid = channel::validate_name(request.channel); !valid) {
        fail(waiter, refusal("invalid_channel", valid.error().message, ExitCode::bad_input));
        return;
    }
    if (payload.size() > protocol::kMaxPayloadBytes) {
        fail(waiter, refusal("too_large",
                             fmt::format("payload of {} bytes is over the limit of {}", payload.size(),
                                         protocol::kMaxPayloadBytes),
                             ExitCode::refused));
        return;
    }
    if (policy && !policy->may_publish(request.channel)) {
        fail(waiter, refusal("access_denied",
                             fmt::format("access denied: {} ({}) may not publish to {}", policy->id(),
                                         to_string(policy->role()), request.channel),
                             ExitCode::refused));
        return;
    }
    if (request.wait_ack && state == session::State::stopped && last_error) {
        fail(waiter, ipc::to_wire(*last_error));  // e.g. revoked: no ack will ever come
        return;
    }
    OutboundMessage message;
    message.id = protocol::new_message_id();
    message.channel = std::move(request.channel);
    message.priority = request.priority;
    message.kind = request.kind;
    if (request.correlation) message.correlation = *request.correlation;
    message.headers = std::move(request.headers);
    message.timestamp_ms = now_ms();
    message.expires_ms = request.ttl_ms == 0 ? 0 : message.timestamp_ms + request.ttl_ms;
    message.payload = std::move(payload);
    const auto message_id = message.id;
    if (auto pushed = queue->push(std::move(message)); !pushed) {
        fail(waiter, refusal("overloaded", pushed.error().message, ExitCode::failure));
        return;
    }
    ++published_local;
    if (request.wait_ack) {
        ack_waiters.emplace(message_id, waiter);
    } else {
        answer(waiter, json{{"message_id", ipc::to_hex(message_id)}});
    }
    pump();
}

void Broker::Impl::enqueue_heartbeat() {
    if (!grant || grant->role != Role::agent || stopping) return;  // backends have no heartbeat channel
    const auto stats = session->stats();
    const auto interval = config.session.heartbeat_interval.count() > 0 ? config.session.heartbeat_interval
                                                                        : std::chrono::milliseconds(30'000);
    const json status{
        {"uptime_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count()},
        {"queue_depth", queue->waiting() + queue->in_flight()},
        {"rtt_ms", std::chrono::duration<double, std::milli>(stats.last_rtt).count()},
        {"reconnects", stats.reconnects}};
    const auto text = status.dump();
    OutboundMessage message;
    message.id = protocol::new_message_id();
    message.channel = fmt::format("agent.{}.heartbeat", grant->assigned_id);
    message.priority = protocol::Priority::low;
    message.kind = protocol::Kind::heartbeat;
    message.headers = {{"content-type", "application/json"}};
    message.timestamp_ms = now_ms();
    message.expires_ms =
        message.timestamp_ms + 2 * static_cast<std::uint64_t>(interval.count());  // stale ones are useless
    message.payload.assign(text.begin(), text.end());
    if (queue->push(std::move(message))) pump();
}

void Broker::Impl::pump() {
    if (!connected() || !grant || config.session.identity == nullptr) return;
    const auto& key = *config.session.identity;
    // A batch larger than the window still goes, alone.
    while (batches_in_flight.size() < kMaxBatchesInFlight && bytes_in_flight < kMaxBytesInFlight) {
        std::vector<OutboundMessage> expired;
        auto batch = queue->take_batch(BatchLimits{}, now_ms(), expired);
        report_expired(expired);
        if (batch.empty()) return;
        BatchInFlight flight;
        flight.channel = batch.front().channel;
        for (const auto& message : batch) {
            flight.ids.push_back(message.id);
            flight.bytes += message.payload.size();
        }
        auto signed_batch = protocol::sign_batch(
            to_envelopes(std::move(batch), key.public_key(), grant->assigned_id, next_sequence), key);
        if (!signed_batch) {
            log(fmt::format("dropped {} message(s) to {}: {}", flight.ids.size(), flight.channel,
                            signed_batch.error().message));
            queue->drop(flight.ids);
            dropped += flight.ids.size();
            for (const auto& id : flight.ids) {
                if (auto it = ack_waiters.find(id); it != ack_waiters.end()) {
                    fail(it->second, ipc::to_wire(signed_batch.error()));
                    ack_waiters.erase(it);
                }
            }
            continue;
        }
        const auto request_id = next_request_id();
        if (!session->publish(request_id, *signed_batch)) {
            queue->release(flight.ids);  // the session dropped meanwhile; sent after the next handshake
            return;
        }
        bytes_in_flight += flight.bytes;
        batches_in_flight.emplace(request_id, std::move(flight));
    }
}

void Broker::Impl::on_publish_result(std::uint32_t request_id, const Result<void>& outcome) {
    const auto it = batches_in_flight.find(request_id);
    if (it == batches_in_flight.end()) return;  // from before a reconnect: those were released and re-sent
    auto flight = std::move(it->second);
    batches_in_flight.erase(it);
    bytes_in_flight -= flight.bytes;
    if (outcome) {
        queue->acknowledge(flight.ids);
        acked += flight.ids.size();
        for (const auto& id : flight.ids) {
            if (auto waiter = ack_waiters.find(id); waiter != ack_waiters.end()) {
                answer(waiter->second, json{{"message_id", ipc::to_hex(id)}, {"acked", true}});
                ack_waiters.erase(waiter);
            }
        }
        pump();
        return;
    }
    const auto& error = outcome.error();
    if (protocol::is_permanent(protocol::reason_of(error))) {
        log(fmt::format("gateway refused {} message(s) to {}: {}; dropped", flight.ids.size(), flight.channel,
                        error.message));
        queue->drop(flight.ids);
        dropped += flight.ids.size();
        for (const auto& id : flight.ids) {
            if (auto waiter = ack_waiters.find(id); waiter != ack_waiters.end()) {
                fail(waiter->second, ipc::to_wire(error));
                ack_waiters.erase(waiter);
            }
        }
        pump();
        return;
    }
    log(fmt::format("gateway deferred {} message(s) to {}: {}; will retry", flight.ids.size(), flight.channel,
                    error.message));
    queue->release(flight.ids);
    schedule_retry();
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

void Broker::Impl::report_expired(std::vector<OutboundMessage>& expired) {
    for (const auto& message : expired) {
        ++dropped;
        if (message.kind == protocol::Kind::heartbeat) continue;  // a stale heartbeat is noise, not news
        log(fmt::format("message {} to {} expired before the gateway stored it; dropped", ipc::to_hex(message.id),
                        message.channel));
        if (auto waiter = ack_waiters.find(message.id); waiter != ack_waiters.end()) {
            fail(waiter->second, ipc::to_wire(protocol::protocol_error(protocol::Reason::expired)));
            ack_waiters.erase(waiter);
        }
    }
}

void Broker::Impl::fail_waiters(const Error& cause) {
    const auto wire = ipc::to_wire(cause);
    for (const auto& [id, waiter] : ack_waiters) fail(waiter, wire);
    ack_waiters.clear();
}

}  // namespace aegis::broker
