#pragma once
// A local client of the broker's socket in memory: what was sent to it, and whether it is open.

#include <memory>
#include <vector>

#include "ipc/codec.h"
#include "ipc/server.h"

namespace aegis::test {

class FakePeer final : public ipc::Peer {
public:
    explicit FakePeer(std::uint64_t peer_id) : id_(peer_id) {}

    bool send(std::shared_ptr<const Bytes> frame) override {
        if (!open) return false;
        frames.push_back(frame);
        return true;
    }
    void close_after_writes() override { open = false; }
    [[nodiscard]] bool is_open() const override { return open; }
    [[nodiscard]] std::uint64_t id() const override { return id_; }
    [[nodiscard]] pid_t pid() const override { return 4242; }
    [[nodiscard]] std::size_t queued_bytes() const override { return queued; }

    // The headers of the frames sent, in order.
    [[nodiscard]] std::vector<nlohmann::json> headers() const {
        std::vector<nlohmann::json> out;
        for (const auto& frame : frames) {
            auto decoded = ipc::decode_frame(*frame);
            if (const auto* header = std::get_if<ipc::Frame>(&decoded)) out.push_back(header->header);
        }
        return out;
    }

    std::vector<std::shared_ptr<const Bytes>> frames;
    bool open = true;
    std::size_t queued = 0;

private:
    std::uint64_t id_;
};

}  // namespace aegis::test
