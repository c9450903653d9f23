#pragma once
// The tools' side of the local socket: a blocking connection with deadlines. Connecting says
// hello; each call waits for the response with its id; events (delivered messages) that
// arrive meanwhile are kept in order for next_message.

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "ipc/codec.h"
#include "ipc/messages.h"
#include "ipc/unix_socket.h"

namespace aegis::ipc {

// When to give up; nullopt waits as long as it takes.
using Deadline = std::optional<std::chrono::steady_clock::time_point>;

[[nodiscard]] Deadline deadline_after(std::optional<std::chrono::milliseconds> timeout);

class Client {
public:
    // Connects and says hello. ExitCode::unreachable when no broker answers or it refuses this
    // user; ExitCode::timeout when the hello is not answered before the deadline.
    [[nodiscard]] static Result<Client> connect(const std::filesystem::path& socket, std::string_view client_name,
                                                Deadline deadline);
    // Connects and says hello without waiting for the answer (PROTOCOL.md §8.3.1): the hello
    // goes out with the first request, in the same write, and its answer is read before that
    // request's. hello() is empty until then; a refused hello fails the call that reads it.
    // For a tool that sends one request whatever the broker offers (aegis-send -m): one round
    // trip on the local socket less.
    [[nodiscard]] static Result<Client> open(const std::filesystem::path& socket, std::string_view client_name);

    // Queues (or, with wait_ack, delivers to the gateway) one message; the message id in hex.
    [[nodiscard]] Result<std::string> publish(const PublishRequest& request, ByteView payload, Deadline deadline);
    // Subscribes this connection; messages then arrive through next_message.
    [[nodiscard]] Result<void> subscribe(const SubscribeRequest& request, Deadline deadline);
    // The next delivered message; nullopt when the deadline passes first. ExitCode::unreachable
    // when the broker closes the connection.
    [[nodiscard]] Result<std::optional<DeliveredMessage>> next_message(Deadline deadline);
    // The broker's status object.
    [[nodiscard]] Result<nlohmann::json> status(Deadline deadline);
    // Asks the broker to stop; returns once the broker closed this connection.
    [[nodiscard]] Result<void> stop(Deadline deadline);

    // The broker's answer to hello (version, state, pid); empty while an open()ed connection has
    // not read it yet.
    [[nodiscard]] const nlohmann::json& hello() const { return hello_; }

    // Sends one request and waits for the response carrying its id; an error response becomes
    // an Error with the exit code the broker gave.
    [[nodiscard]] Result<Frame> call(nlohmann::json header, ByteView payload, Deadline deadline);

    // Pipelining: send() writes a request without waiting and returns its id; response() waits
    // for the answer to that id (answers to other ids that arrive meanwhile are kept).
    [[nodiscard]] Result<std::uint64_t> send(nlohmann::json header, ByteView payload, Deadline deadline);
    [[nodiscard]] Result<Frame> response(std::uint64_t id, Deadline deadline);

    // Coalesced writes, for a stream of requests: send_later() keeps the frame and returns its id;
    // what is kept goes out in one write once it reaches kCoalesceBytes, at flush(), and before
    // this connection waits to read anything (so no answer is awaited to a request not sent).
    // A caller about to wait for something else (its input) flushes first.
    [[nodiscard]] Result<std::uint64_t> send_later(nlohmann::json header, ByteView payload, Deadline deadline);
    [[nodiscard]] Result<void> flush(Deadline deadline);
    static constexpr std::size_t kCoalesceBytes = 64 * 1024;

    // True when a frame (an event or an answer) is already here: reading it does not wait for
    // the socket.
    [[nodiscard]] bool frame_ready() const;

    // The next event frame of any kind ("message", "caught_up", ...); nullopt at the deadline.
    [[nodiscard]] Result<std::optional<Frame>> next_event(Deadline deadline);

    // The id of the message that the wait_ack publish `request_id` queued, from the broker's
    // "queued" event, which is removed; nullopt when that event has not been read.
    [[nodiscard]] std::optional<std::string> take_queued(std::uint64_t request_id);

private:
    Client(UniqueFd fd, std::filesystem::path socket) : fd_(std::move(fd)), socket_(std::move(socket)) {}
    [[nodiscard]] Result<void> write_all(ByteView bytes, Deadline deadline);
    // The broker closed the connection (worded for a hello not answered yet: another user's
    // broker closes it there).
    [[nodiscard]] Error closed_error() const;
    // The next frame; nullopt at the deadline. read_frame() takes in the answer to a pending
    // hello on the way (a refused hello is its error); read_any_frame() returns every frame.
    [[nodiscard]] Result<std::optional<Frame>> read_frame(Deadline deadline);
    [[nodiscard]] Result<std::optional<Frame>> read_any_frame(Deadline deadline);
    // True when `frame` answers the pending hello, which is then taken in; its error if refused.
    [[nodiscard]] Result<bool> took_hello(Frame& frame);

    UniqueFd fd_;
    std::filesystem::path socket_;
    std::optional<std::uint64_t> hello_pending_;                     // the id of a hello whose answer is not read yet
    FrameReader reader_{kMaxEventFrameBytes, kMaxEventHeaderBytes};  // the broker's frames
    Bytes unsent_;                                                   // frames of send_later() not written yet
    std::deque<Frame> events_;
    std::map<std::uint64_t, Frame> early_responses_;
    nlohmann::json hello_;
    std::uint64_t next_id_ = 1;
};

// Connects to the broker on `socket`, asks it to stop and waits (bounded by the deadline) for
// the process to end. ExitCode::unreachable when no broker runs there.
[[nodiscard]] Result<void> stop_broker(const std::filesystem::path& socket, Deadline deadline);

}  // namespace aegis::ipc
