#pragma once
// Many publishes over one connection without a round trip each: up to `window` requests and
// `window_bytes` payload bytes are outstanding (always at least one request); the oldest answer
// is awaited before another is sent (back-pressure). A wide window lets the broker commit
// many messages at once (group commit), so the window sets the throughput of aegis-send -l.

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "core/result.h"
#include "ipc/client.h"

namespace aegis::cli {

class PublishPipeline {
public:
    // Called with (message id, channel) for each message the broker accepted, in order.
    using OnQueued = std::function<void(const std::string&, const std::string&)>;

    PublishPipeline(ipc::Client& client, std::size_t window, std::size_t window_bytes,
                    std::optional<std::chrono::milliseconds> timeout, OnQueued on_queued)
        : client_(client),
          window_(window == 0 ? 1 : window),
          window_bytes_(window_bytes),
          timeout_(timeout),
          on_queued_(std::move(on_queued)) {}

    // Requests are coalesced into few writes (ipc::Client::send_later): call flush() before
    // waiting for anything but the broker.
    [[nodiscard]] Result<void> publish(const ipc::PublishRequest& request, ByteView payload);
    [[nodiscard]] Result<void> flush();
    // Waits for every outstanding answer.
    [[nodiscard]] Result<void> finish();

private:
    [[nodiscard]] Result<void> settle_oldest();

    struct Outstanding {
        std::uint64_t request_id;
        std::string channel;
        std::size_t bytes;
    };
    ipc::Client& client_;
    std::size_t window_;
    std::size_t window_bytes_;
    std::size_t outstanding_bytes_ = 0;
    std::optional<std::chrono::milliseconds> timeout_;
    OnQueued on_queued_;
    std::deque<Outstanding> outstanding_;
};

}  // namespace aegis::cli
