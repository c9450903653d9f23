#pragma once
// The outbound flow's queue (outbound_flow.h) on the broker's durable queue: a commit of new
// messages and acknowledged ones is one transaction of the state database.

#include "broker/outbound_flow.h"
#include "store/outbound_store.h"
#include "store/sqlite.h"

namespace aegis::broker {

class StoredOutboundQueue final : public OutboundQueue {
public:
    StoredOutboundQueue(store::Database& database, store::SqliteOutboundQueue& queue)
        : database_(database), queue_(queue) {}

    [[nodiscard]] Result<void> commit(const std::vector<store::OutboundMessage>& messages,
                                      const std::vector<protocol::MessageId>& acknowledged) override;
    [[nodiscard]] Result<std::vector<store::OutboundMessage>> take_batch(
        const store::BatchLimits& limits, std::uint64_t now_ms, std::vector<store::OutboundMessage>& expired) override {
        return queue_.take_batch(limits, now_ms, expired);
    }
    void release_in_flight() override { queue_.release_in_flight(); }
    [[nodiscard]] std::size_t waiting() const override { return queue_.waiting(); }

private:
    store::Database& database_;
    store::SqliteOutboundQueue& queue_;
};

}  // namespace aegis::broker
