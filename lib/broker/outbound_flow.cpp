#include "broker/outbound_flow.h"

namespace aegis::broker {

bool OutboundFlow::add(PendingPublish pending) {
    for (const auto& message : pending.messages) {
        ++pending_messages_;
        pending_bytes_ += message.payload.size();
    }
    pending_.push_back(std::move(pending));
    return pending_messages_ >= kMaxGroupCommit || pending_.size() >= kMaxGroupCommit;
}

OutboundFlow::Flushed OutboundFlow::flush(OutboundQueue& queue) {
    Flushed out;
    out.group = std::move(pending_);
    pending_.clear();
    pending_messages_ = 0;
    pending_bytes_ = 0;
    auto acknowledged_ids = std::move(acknowledged_unremoved_);
    acknowledged_unremoved_.clear();
    std::vector<store::OutboundMessage> messages;
    messages.reserve(out.group.size());
    for (auto& pending : out.group) {
        if (pending.refused) continue;
        for (auto& message : pending.messages) messages.push_back(std::move(message));  // the id stays behind
    }
    out.messages = messages.size();
    if (auto committed = queue.commit(messages, acknowledged_ids); !committed) {
        if (!messages.empty()) out.store_error = committed.error();
        // The removal alone: what the gateway stored must not be sent again.
        if (!acknowledged_ids.empty()) {
            if (auto removed = queue.commit({}, acknowledged_ids); !removed) out.removal_error = removed.error();
        }
    }
    return out;
}

OutboundFlow::Taken OutboundFlow::take(OutboundQueue& queue, std::uint64_t now_ms, const Seal& seal) const {
    Taken out;
    std::size_t batches = batches_.size();
    std::size_t bytes = bytes_in_flight_;
    while (batches < kMaxBatchesInFlight && bytes < kMaxBytesInFlight) {
        if (batches >= kEagerBatchesInFlight && queue.waiting() < store::BatchLimits{}.max_messages) break;
        auto next = queue.take_batch(store::BatchLimits{}, now_ms, out.expired);
        if (!next) {
            out.error = next.take_error();
            break;
        }
        auto batch = std::move(*next);
        if (batch.empty()) {
            out.backing_off = queue.waiting() > 0;
            break;
        }
        BatchInFlight flight;
        flight.channel = batch.front().channel;
        for (const auto& message : batch) {
            flight.ids.push_back(message.id);
            if (message.kind == protocol::Kind::request) flight.requests.push_back(message.id);
            flight.bytes += message.payload.size();
        }
        auto sealed = seal(std::move(batch), flight);
        if (!sealed) continue;
        ++batches;
        bytes += flight.bytes;
        out.batches.push_back(TakenBatch{std::move(*sealed), std::move(flight)});
    }
    return out;
}

void OutboundFlow::send(std::vector<TakenBatch> taken, BatchPublisher& session, OutboundQueue& queue) {
    for (auto& [batch, flight] : taken) {
        const auto request_id = session.publish(batch);
        if (!request_id) {
            queue.release_in_flight();  // the session dropped meanwhile; sent after the next handshake
            return;
        }
        bytes_in_flight_ += flight.bytes;
        batches_.emplace(*request_id, std::move(flight));
    }
}

std::optional<BatchInFlight> OutboundFlow::answered(std::uint32_t request_id) {
    const auto it = batches_.find(request_id);
    if (it == batches_.end()) return std::nullopt;
    auto flight = std::move(it->second);
    batches_.erase(it);
    bytes_in_flight_ -= flight.bytes;
    return flight;
}

void OutboundFlow::acknowledged(const std::vector<protocol::MessageId>& ids) {
    acknowledged_unremoved_.insert(acknowledged_unremoved_.end(), ids.begin(), ids.end());
}

void OutboundFlow::clear_window() {
    batches_.clear();
    bytes_in_flight_ = 0;
}

void OutboundFlow::await_ack(const protocol::MessageId& id, Waiter waiter) {
    ack_waiters_.emplace(id, std::move(waiter));
}

std::optional<Waiter> OutboundFlow::take_waiter(const protocol::MessageId& id) {
    const auto it = ack_waiters_.find(id);
    if (it == ack_waiters_.end()) return std::nullopt;
    auto waiter = std::move(it->second);
    ack_waiters_.erase(it);
    return waiter;
}

std::vector<Waiter> OutboundFlow::take_waiters() {
    std::vector<Waiter> out;
    out.reserve(ack_waiters_.size());
    for (auto& [id, waiter] : ack_waiters_) out.push_back(std::move(waiter));
    ack_waiters_.clear();
    return out;
}

std::vector<protocol::MessageId> OutboundFlow::awaited() const {
    std::vector<protocol::MessageId> out;
    out.reserve(ack_waiters_.size());
    for (const auto& [id, waiter] : ack_waiters_) out.push_back(id);
    return out;
}

}  // namespace aegis::broker
