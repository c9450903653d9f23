#pragma once
// The broker's side of the local socket: Asio local stream sockets on the broker's io_context.
// Listens with mode 0600 (0660 for an admitted group), checks each peer with SO_PEERCRED, splits the byte stream into
// frames, answers framing errors itself and hands every well-formed frame to on_frame.
// Everything runs on the io_context's thread.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/result.h"
#include "ipc/codec.h"

namespace aegis::ipc {

// One accepted, uid-checked local connection.
class Peer {
public:
    virtual ~Peer() = default;
    // Queues an encoded frame (shared, so a fan-out encodes once). False when the peer's queue is
    // over its bound; the peer is then closed.
    virtual bool send(std::shared_ptr<const Bytes> frame) = 0;
    bool send(const nlohmann::json& header, ByteView payload = {}) {
        return send(std::make_shared<const Bytes>(encode_frame(header, payload)));
    }
    // Closes once the queued frames are written (bounded by a short timeout).
    virtual void close_after_writes() = 0;
    [[nodiscard]] virtual bool is_open() const = 0;
    [[nodiscard]] virtual std::uint64_t id() const = 0;  // unique per server, never reused
    [[nodiscard]] virtual pid_t pid() const = 0;
    [[nodiscard]] virtual std::size_t queued_bytes() const = 0;
};

struct ServerCallbacks {
    std::function<void(const std::shared_ptr<Peer>& peer, Frame frame)> on_frame;
    // Once per peer that reached on_frame's world (accepted and uid-checked), when it ends.
    std::function<void(const std::shared_ptr<Peer>& peer)> on_close;
    std::function<void(std::string_view line)> log;
};

struct ServerLimits {
    std::size_t max_queued_bytes = 64 * 1024 * 1024;  // per peer; a slower reader is disconnected
    std::size_t max_peers = 1024;                     // more are refused with "overloaded"
    // Set: the socket is 0660 for this group, and its members (primary or supplementary group of
    // the connecting process) are admitted besides the broker's own uid and root.
    std::optional<gid_t> admitted_group;
};

class Server {
public:
    virtual ~Server() = default;
    // Binds `socket` (its directory prepared and the path claimed beforehand) with mode 0600.
    [[nodiscard]] static Result<std::unique_ptr<Server>> listen(boost::asio::io_context& io,
                                                                const std::filesystem::path& socket,
                                                                ServerCallbacks callbacks, ServerLimits limits = {});
    // Stops accepting and removes the socket file; open peers stay until closed.
    virtual void stop_accepting() = 0;
    // Closes every peer after its queued frames.
    virtual void close_all() = 0;
    [[nodiscard]] virtual std::size_t peers() const = 0;
};

}  // namespace aegis::ipc
