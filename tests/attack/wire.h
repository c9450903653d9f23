#pragma once
// The attack client's own end of the wire: what an honest peer never sends (bare TCP
// connections, unfinished fragmented messages, records out of order), every wait bounded.
// The only file of the attack client that sees Asio and Beast.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"

namespace aegis::attack {

using Ms = std::chrono::milliseconds;

// How a wait for the peer ended.
enum class Ending : std::uint8_t {
    message,    // a message (or data) arrived
    closed,     // the peer closed the connection (WebSocket close or TCP end)
    timed_out,  // nothing within the time given; the connection is still open
};

struct Received {
    Ending ending = Ending::timed_out;
    Bytes message;
    std::string close_reason;  // "close code 1009" and the like, when the peer sent one
};

class Peer {
public:
    virtual ~Peer() = default;
    // One whole binary message.
    [[nodiscard]] virtual Result<void> send(ByteView message, Ms timeout) = 0;
    // One frame of a binary message; the message ends with the frame whose `last` is true.
    [[nodiscard]] virtual Result<void> send_fragment(ByteView part, bool last, Ms timeout) = 0;
    // The next message, or how the wait ended. A bare TCP peer reports any data as a message.
    [[nodiscard]] virtual Received receive(Ms timeout) = 0;
    [[nodiscard]] virtual bool is_websocket() const = 0;
};

// Owns the event loop every peer runs on (one thread: the caller's).
class Wire {
public:
    Wire();
    ~Wire();
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    // A TCP connection to 127.0.0.1:port that sends nothing.
    [[nodiscard]] Result<std::unique_ptr<Peer>> tcp(std::uint16_t port, Ms timeout);
    // TCP, then the WebSocket upgrade.
    [[nodiscard]] Result<std::unique_ptr<Peer>> websocket(std::uint16_t port, Ms timeout);

    // Waits on all peers at once until each has been closed by the other side, or the deadline.
    // For each peer: how long after the call it was closed, or nullopt if it still was open.
    // Data that arrives meanwhile is read and dropped.
    [[nodiscard]] std::vector<std::optional<Ms>> wait_closed(const std::vector<Peer*>& peers, Ms timeout);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace aegis::attack
