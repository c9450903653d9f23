#pragma once
// Many publishes over one connection without a round trip each: up to `window` messages and
// `window_bytes` payload bytes are outstanding (always at least one request); the oldest answer
// is awaited before more is sent (back-pressure). A wide window lets the broker commit many
// messages at once (group commit), so the window sets the throughput of aegis-send -l.
//
// Messages that come together travel together: up to kBatchMessages of them (kBatchBytes of
// payload) in one publish_batch request, when the broker takes it (its hello says so) and
// the messages do not wait for the gateway's ack; a message that comes alone is one publish.

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "ipc/client.h"

namespace aegis::cli {

class PublishPipeline {
public:
    // Called with (message id, channel) for each message the broker accepted, in order.
    using OnQueued = std::function<void(const std::string&, const std::string&)>;
    static constexpr std::size_t kBatchMessages = 256;
    static constexpr std::size_t kBatchBytes = 256 * 1024;

    // Every message gets the fields of `request`.
    PublishPipeline(ipc::Client& client, ipc::PublishRequest request, std::size_t window, std::size_t window_bytes,
                    std::optional<std::chrono::milliseconds> timeout, OnQueued on_queued);

    // Gathers the message, or sends it (and what was gathered). Requests are coalesced into
    // few writes too (ipc::Client::send_later): call flush() before waiting for anything but
    // the broker.
    [[nodiscard]] Result<void> publish(ByteView payload);
    [[nodiscard]] Result<void> flush();
    // Sends what is left and waits for every outstanding answer.
    [[nodiscard]] Result<void> finish();

private:
    [[nodiscard]] Result<void> send_gathered();
    // Sends one request of `messages` messages once the window has room for it.
    [[nodiscard]] Result<void> send(nlohmann::json header, ByteView payload, std::size_t messages);
    [[nodiscard]] Result<void> make_room(std::size_t messages, std::size_t bytes);
    [[nodiscard]] Result<void> settle_oldest();

    struct Outstanding {
        std::uint64_t request_id;
        std::size_t messages;  // two or more: a publish_batch, answered with "message_ids"
        std::size_t bytes;
    };
    ipc::Client& client_;
    ipc::PublishRequest request_;
    // Whether to gather publish_batch frames: the broker takes them and nothing waits for acks.
    // Decided once the broker's hello has been read (an open()ed client reads it with the first
    // answer); until then each message goes alone.
    [[nodiscard]] bool batches();
    std::optional<bool> batches_;
    std::size_t window_;
    std::size_t window_bytes_;
    std::optional<std::chrono::milliseconds> timeout_;
    OnQueued on_queued_;
    std::deque<Outstanding> outstanding_;
    std::size_t outstanding_messages_ = 0;
    std::size_t outstanding_bytes_ = 0;
    std::vector<std::uint32_t> lengths_;  // gathered, not sent yet
    Bytes gathered_;
};

}  // namespace aegis::cli
