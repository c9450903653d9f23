#pragma once
// The broker's outbound flow: the publishes gathered for one commit, the window of batches given
// to the session and not yet answered, the acknowledged messages still on file, and the local
// clients waiting for a puback. It owns that state and decides what to commit, take and send;
// it reads no clock (time comes in as an argument) and reaches the queue and the session only
// through the two interfaces below, so unit tests drive it with fakes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "broker/waiter.h"
#include "core/result.h"
#include "ipc/messages.h"
#include "protocol/envelope.h"
#include "protocol/message_id_hash.h"
#include "store/outbound_message.h"

namespace aegis::broker {

// Batches sent and not yet acknowledged, at most. Up to kEagerBatchesInFlight, whatever is
// waiting goes at once (a lone message is not held back); beyond it, only a full batch goes,
// and the rest gathers until an acknowledgement comes back. Under load, messages then travel in
// large batches (one signature, one gateway commit each), while a link with a long round trip
// can still keep kMaxBatchesInFlight full ones in flight.
inline constexpr std::size_t kMaxBatchesInFlight = 16;
inline constexpr std::size_t kEagerBatchesInFlight = 2;
// Unacknowledged payload bytes given to the session; well under the transport's send-queue
// bound (64 MiB), which closes the connection when exceeded.
inline constexpr std::size_t kMaxBytesInFlight = 8 * 1024 * 1024;
// Publishes committed in one transaction at most; more wait for the next commit.
inline constexpr std::size_t kMaxGroupCommit = 4096;

// A publish waiting for the end of the event-loop turn, when all of them are committed at once.
struct PendingPublish {
    Waiter waiter;
    bool wait_ack = false;
    bool several = false;                          // a publish_batch: answered with every message id
    bool message_ids = true;                       // false: a publish_batch answered with its count only
    std::optional<ipc::WireError> refused;         // answered in turn, so responses keep their order
    std::vector<store::OutboundMessage> messages;  // one, or a batch's; empty when refused
    // A single publish, not refused, whose client waits for the gateway's ack once it is stored.
    [[nodiscard]] bool awaits_ack() const { return wait_ack && !several && !refused; }
};

struct BatchInFlight {
    std::string channel;
    std::vector<protocol::MessageId> ids;
    std::vector<protocol::MessageId> requests;  // the ids of kind request (refused with no_responders)
    std::size_t bytes = 0;
};

// A batch taken from the queue and signed, to be handed to the session.
struct TakenBatch {
    protocol::SignedBatch batch;
    BatchInFlight flight;
};

// The outbound queue as the flow uses it (the broker's is store::SqliteOutboundQueue).
class OutboundQueue {
public:
    virtual ~OutboundQueue() = default;
    // Stores `messages` and removes `acknowledged` in one commit, or does neither.
    [[nodiscard]] virtual Result<void> commit(const std::vector<store::OutboundMessage>& messages,
                                              const std::vector<protocol::MessageId>& acknowledged) = 0;
    // The next batch due at `now_ms`, marked in flight; expired messages are appended to `expired`.
    [[nodiscard]] virtual Result<std::vector<store::OutboundMessage>> take_batch(
        const store::BatchLimits& limits, std::uint64_t now_ms, std::vector<store::OutboundMessage>& expired) = 0;
    // Everything in flight waits again at once (the session was lost).
    virtual void release_in_flight() = 0;
    [[nodiscard]] virtual std::size_t waiting() const = 0;
};

// The session as the flow uses it.
class BatchPublisher {
public:
    virtual ~BatchPublisher() = default;
    // Hands a signed batch to the session: the request id its answer will carry, or none when
    // the session cannot take it (it was lost meanwhile).
    [[nodiscard]] virtual std::optional<std::uint32_t> publish(const protocol::SignedBatch& batch) = 0;
};

class OutboundFlow {
public:
    // ---- publishes gathered for one commit ----
    // True when the group is full: commit it now rather than at the end of the turn.
    [[nodiscard]] bool add(PendingPublish pending);
    [[nodiscard]] std::size_t pending_messages() const { return pending_messages_; }
    [[nodiscard]] std::uint64_t pending_bytes() const { return pending_bytes_; }
    // Acknowledged messages wait to be removed from the queue.
    [[nodiscard]] bool has_unremoved() const { return !acknowledged_unremoved_.empty(); }
    [[nodiscard]] bool has_commit_work() const { return !pending_.empty() || has_unremoved(); }

    struct Flushed {
        std::vector<PendingPublish> group;   // to answer, in order (their messages moved out, ids kept)
        std::size_t messages = 0;            // the messages of the group (the refused publishes have none)
        std::optional<Error> store_error;    // they could not be stored (none was)
        std::optional<Error> removal_error;  // acknowledged messages could not be removed
    };
    // Stores the gathered publishes and removes what the gateway acknowledged, in one commit.
    [[nodiscard]] Flushed flush(OutboundQueue& queue);

    // ---- the window of batches given to the session ----
    // Turns a taken batch into the signed one to send; none: it is not sent (the caller held
    // it back or made it a dead letter).
    using Seal = std::function<std::optional<protocol::SignedBatch>(std::vector<store::OutboundMessage> batch,
                                                                    const BatchInFlight& flight)>;
    struct Taken {
        std::vector<TakenBatch> batches;
        std::vector<store::OutboundMessage> expired;  // found expired while taking
        bool backing_off = false;                     // messages wait, none due yet: look again later
        std::optional<Error> error;                   // the queue could not be read
    };
    // Takes from the queue, at `now_ms`, what the window leaves room for. A batch larger than
    // the window still goes, alone.
    [[nodiscard]] Taken take(OutboundQueue& queue, std::uint64_t now_ms, const Seal& seal) const;
    // Hands taken batches to the session, into the window. If the session cannot take one,
    // everything in flight in the queue waits again, for the next session.
    void send(std::vector<TakenBatch> taken, BatchPublisher& session, OutboundQueue& queue);
    [[nodiscard]] bool window_full() const {
        return batches_.size() >= kMaxBatchesInFlight || bytes_in_flight_ >= kMaxBytesInFlight;
    }
    // The gateway answered a publish: its batch leaves the window. None when it is not in the
    // window (sent before a reconnect, or the queue was purged): the answer is ignored.
    [[nodiscard]] std::optional<BatchInFlight> answered(std::uint32_t request_id);
    // Stored by the gateway: removed from the queue with the next flush.
    void acknowledged(const std::vector<protocol::MessageId>& ids);
    // Nothing given to the session is in flight any more (the session was lost, or the queue
    // purged): answers to it are ignored.
    void clear_window();
    [[nodiscard]] std::size_t batches_in_flight() const { return batches_.size(); }
    [[nodiscard]] std::size_t bytes_in_flight() const { return bytes_in_flight_; }

    // ---- local clients waiting for a puback ----
    void await_ack(const protocol::MessageId& id, Waiter waiter);
    // The client waiting for this message's ack, no longer waiting here.
    [[nodiscard]] std::optional<Waiter> take_waiter(const protocol::MessageId& id);
    [[nodiscard]] std::vector<Waiter> take_waiters();
    [[nodiscard]] std::vector<protocol::MessageId> awaited() const;

private:
    std::vector<PendingPublish> pending_;
    std::size_t pending_messages_ = 0;  // of those, the ones not refused
    std::uint64_t pending_bytes_ = 0;
    std::unordered_map<std::uint32_t, BatchInFlight> batches_;
    std::size_t bytes_in_flight_ = 0;
    std::vector<protocol::MessageId> acknowledged_unremoved_;
    std::unordered_map<protocol::MessageId, Waiter, protocol::MessageIdHash> ack_waiters_;
};

}  // namespace aegis::broker
