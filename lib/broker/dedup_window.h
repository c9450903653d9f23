#pragma once
// Remembers the ids of the most recent delivered messages so a message the gateway delivers
// twice (at-least-once, after a reconnect) reaches local subscribers once. Bounded: the oldest
// id is forgotten first. (A persisted window comes with the durable store.)

#include <cstddef>
#include <deque>
#include <unordered_set>

#include "protocol/envelope.h"
#include "protocol/message_id_hash.h"

namespace aegis::broker {

class DedupWindow {
public:
    explicit DedupWindow(std::size_t capacity = 100'000) : capacity_(capacity == 0 ? 1 : capacity) {}

    // True the first time an id is seen while it is inside the window.
    [[nodiscard]] bool first_sight(const protocol::MessageId& id);
    [[nodiscard]] std::size_t size() const { return order_.size(); }

private:
    std::size_t capacity_;
    std::deque<protocol::MessageId> order_;
    std::unordered_set<protocol::MessageId, protocol::MessageIdHash> seen_;
};

}  // namespace aegis::broker
