#pragma once
// The broker's outbound queue: messages accepted from local tools, waiting for the gateway's
// puback. Critical first, then in arrival order. A message taken for sending stays in the
// queue (in flight) until acknowledged, dropped, or released back after a lost session.
// The broker runs on the durable one (store::SqliteOutboundQueue); the in-memory one stays as
// the reference for the interface's ordering rules.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "protocol/envelope.h"

namespace aegis::broker {

// A message as a local tool gave it; origin, origin id and sequence are filled in when sent.
struct OutboundMessage {
    protocol::MessageId id{};
    std::string channel;
    protocol::Priority priority = protocol::Priority::normal;
    protocol::Kind kind = protocol::Kind::event;
    protocol::MessageId correlation{};
    std::vector<std::pair<std::string, std::string>> headers;
    std::uint64_t timestamp_ms = 0;
    std::uint64_t expires_ms = 0;  // 0: never
    Bytes payload;
};

struct BatchLimits {
    std::size_t max_messages = 256;
    std::size_t max_bytes = 1024 * 1024;  // encoded message bytes; a single larger message goes alone
};

class OutboundQueue {
public:
    virtual ~OutboundQueue() = default;

    // Accepts a message (for a durable queue: stored before this returns).
    [[nodiscard]] virtual Result<void> push(OutboundMessage message) = 0;
    // The next batch to send, marked in flight: the highest-priority waiting message and the
    // messages right behind it in order, while they share its channel and priority. Messages
    // whose expiry has passed are removed and appended to `expired` instead.
    [[nodiscard]] virtual std::vector<OutboundMessage> take_batch(const BatchLimits& limits, std::uint64_t now_ms,
                                                                  std::vector<OutboundMessage>& expired) = 0;
    // Stored by the gateway: removed for good.
    virtual void acknowledge(const std::vector<protocol::MessageId>& ids) = 0;
    // Refused for a reason a retry cannot fix: removed (dead letters come with the durable queue).
    virtual void drop(const std::vector<protocol::MessageId>& ids) = 0;
    // Not known to be stored (the session dropped, or a retryable refusal): waiting again, in
    // their original order.
    virtual void release(const std::vector<protocol::MessageId>& ids) = 0;
    virtual void release_all() = 0;

    [[nodiscard]] virtual std::size_t waiting() const = 0;
    [[nodiscard]] virtual std::size_t in_flight() const = 0;
};

[[nodiscard]] std::unique_ptr<OutboundQueue> make_memory_queue(std::size_t max_messages = 1'000'000);

}  // namespace aegis::broker
