// The in-memory OutboundQueue: waiting messages ordered by (priority, arrival), in-flight ones
// kept aside with their arrival number so a release puts them back where they were.

#include <map>
#include <unordered_map>

#include "broker/message_id_hash.h"
#include "broker/outbound_queue.h"

namespace aegis::broker {

namespace {

using OrderKey = std::pair<std::uint8_t, std::uint64_t>;  // (priority, arrival)

class MemoryQueue final : public OutboundQueue {
public:
    explicit MemoryQueue(std::size_t max_messages) : max_messages_(max_messages) {}

    Result<void> push(OutboundMessage message) override {
        if (waiting_.size() + in_flight_.size() >= max_messages_) {
            return make_error(ExitCode::failure, "the outbound queue is full ({} messages)", max_messages_);
        }
        const OrderKey key{static_cast<std::uint8_t>(message.priority), next_arrival_++};
        waiting_.emplace(key, std::move(message));
        return {};
    }

    std::vector<OutboundMessage> take_batch(const BatchLimits& limits, std::uint64_t now_ms,
                                            std::vector<OutboundMessage>& expired) override {
        std::vector<OutboundMessage> batch;
        std::size_t bytes = 0;
        auto it = waiting_.begin();
        while (it != waiting_.end() && batch.size() < limits.max_messages) {
            auto& message = it->second;
            if (message.expires_ms != 0 && message.expires_ms <= now_ms) {
                expired.push_back(std::move(message));
                it = waiting_.erase(it);
                continue;
            }
            const auto message_bytes = protocol::encoded_message_bytes(message.headers, message.payload.size());
            if (!batch.empty()) {
                const bool same_stream =
                    message.channel == batch.front().channel && message.priority == batch.front().priority;
                if (!same_stream || bytes + message_bytes > limits.max_bytes) break;
            }
            bytes += message_bytes;
            batch.push_back(message);
            in_flight_.emplace(message.id, std::make_pair(it->first, std::move(message)));
            it = waiting_.erase(it);
        }
        return batch;
    }

    void acknowledge(const std::vector<protocol::MessageId>& ids) override { forget(ids); }
    void drop(const std::vector<protocol::MessageId>& ids) override { forget(ids); }

    void release(const std::vector<protocol::MessageId>& ids) override {
        for (const auto& id : ids) {
            const auto it = in_flight_.find(id);
            if (it == in_flight_.end()) continue;
            waiting_.emplace(it->second.first, std::move(it->second.second));
            in_flight_.erase(it);
        }
    }

    void release_all() override {
        for (auto& [id, entry] : in_flight_) waiting_.emplace(entry.first, std::move(entry.second));
        in_flight_.clear();
    }

    [[nodiscard]] std::size_t waiting() const override { return waiting_.size(); }
    [[nodiscard]] std::size_t in_flight() const override { return in_flight_.size(); }

private:
    void forget(const std::vector<protocol::MessageId>& ids) {
        for (const auto& id : ids) in_flight_.erase(id);
    }

    std::size_t max_messages_;
    std::uint64_t next_arrival_ = 0;
    std::map<OrderKey, OutboundMessage> waiting_;
    std::unordered_map<protocol::MessageId, std::pair<OrderKey, OutboundMessage>, MessageIdHash> in_flight_;
};

}  // namespace

std::unique_ptr<OutboundQueue> make_memory_queue(std::size_t max_messages) {
    return std::make_unique<MemoryQueue>(max_messages);
}

}  // namespace aegis::broker
