#include "broker/stored_outbound_queue.h"

namespace aegis::broker {

Result<void> StoredOutboundQueue::commit(const std::vector<store::OutboundMessage>& messages,
                                         const std::vector<protocol::MessageId>& acknowledged) {
    // Fsync'd when the answers promise the new messages, unless they are all requests,
    // replies and heartbeats (protocol::short_lived).
    const auto durability =
        protocol::any_needs_fsync(messages) ? store::Durability::power_loss : store::Durability::process_crash;
    auto committed = [&]() -> Result<void> {
        auto transaction = database_.begin(durability);
        if (!transaction) return transaction.take_error();
        if (auto pushed = queue_.push_many(messages); !pushed) return pushed;
        if (auto removed = queue_.acknowledge(acknowledged); !removed) return removed;
        return transaction->commit();
    }();
    if (!committed) (void)queue_.reload_counters();  // the transaction rolled back; the counters may have moved
    return committed;
}

}  // namespace aegis::broker
