#include "ipc/client.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace aegis::ipc {

namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left for poll(): -1 forever, 0 when past.
[[nodiscard]] int poll_timeout(const Deadline& deadline) {
    if (!deadline) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 60'000 ? 60'000 : static_cast<int>(left);
}

[[nodiscard]] bool passed(const Deadline& deadline) {
    return deadline && Clock::now() >= *deadline;
}

[[nodiscard]] Error timeout_error(std::string_view what) {
    return make_error(ExitCode::timeout, "timed out waiting for the broker ({})", what);
}

}  // namespace

Deadline deadline_after(std::optional<std::chrono::milliseconds> timeout) {
    if (!timeout) return std::nullopt;
    return Clock::now() + *timeout;
}

Result<Client> Client::open(const std::filesystem::path& socket, std::string_view client_name) {
    auto fd = connect_unix(socket);
    if (!fd) return fd.take_error();
    Client client(std::move(*fd), socket);
    HelloRequest hello;
    hello.client = std::string(client_name);
    auto id = client.send_later(to_header(hello), {}, std::nullopt);  // a small frame: kept, never written here
    if (!id) return id.take_error();
    client.hello_pending_ = *id;
    return client;
}

Result<Client> Client::connect(const std::filesystem::path& socket, std::string_view client_name, Deadline deadline) {
    auto client = open(socket, client_name);
    if (!client) return client.take_error();
    while (client->hello_pending_) {
        auto frame = client->read_any_frame(deadline);
        if (!frame) return frame.take_error();
        if (!frame->has_value()) return timeout_error("hello");
        auto took = client->took_hello(**frame);
        if (!took) return took.take_error();
        if (!*took && (*frame)->header.contains("event")) client->events_.push_back(std::move(**frame));
    }
    return client;
}

Result<bool> Client::took_hello(Frame& frame) {
    if (!hello_pending_) return false;
    const auto id = frame.header.find("id");
    if (id == frame.header.end() || !id->is_number_unsigned() || id->get<std::uint64_t>() != *hello_pending_)
        return false;
    hello_pending_.reset();
    if (auto error = response_error(frame.header)) return to_error(*error);
    hello_ = std::move(frame.header);
    return true;
}

Result<std::optional<Frame>> Client::read_frame(Deadline deadline) {
    for (;;) {
        auto frame = read_any_frame(deadline);
        if (!frame || !frame->has_value()) return frame;
        // The answer to an open()ed connection's hello comes ahead of every later request's.
        auto took = took_hello(**frame);
        if (!took) return took.take_error();
        if (!*took) return frame;
    }
}

Error Client::closed_error() const {
    if (hello_pending_) {
        return make_error(ExitCode::unreachable,
                          "the broker on {} closed the connection during hello (another user's broker?)",
                          socket_.string());
    }
    return make_error(ExitCode::unreachable, "the broker closed the connection");
}

Result<void> Client::write_all(ByteView bytes, Deadline deadline) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t sent = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            done += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd watch{fd_.get(), POLLOUT, 0};
            const int ready = ::poll(&watch, 1, poll_timeout(deadline));
            if (ready == 0 && passed(deadline)) return timeout_error("sending");
            continue;
        }
        if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) return closed_error();
        return make_error(ExitCode::unreachable, "cannot write to the broker: {}", std::strerror(errno));
    }
    return {};
}

Result<std::uint64_t> Client::send_later(nlohmann::json header, ByteView payload, Deadline deadline) {
    const std::uint64_t id = next_id_++;
    header["id"] = id;
    append_frame(unsent_, header, payload);
    if (unsent_.size() >= kCoalesceBytes) {
        if (auto written = flush(deadline); !written) return written.take_error();
    }
    return id;
}

Result<void> Client::flush(Deadline deadline) {
    if (unsent_.empty()) return {};
    auto written = write_all(unsent_, deadline);
    unsent_.clear();
    return written;
}

bool Client::frame_ready() const {
    return !events_.empty() || reader_.ready();
}

Result<std::optional<Frame>> Client::read_any_frame(Deadline deadline) {
    // Not zeroed: recv() fills what is used. Zeroing 64 KiB for every frame, most of which are
    // already buffered, was a tenth of aegis-sub's time in a stream.
    std::array<std::uint8_t, 64 * 1024> chunk;  // NOLINT(cppcoreguidelines-pro-type-member-init)
    for (;;) {
        auto decoded = reader_.next();
        if (auto* frame = std::get_if<Frame>(&decoded)) return std::optional<Frame>(std::move(*frame));
        if (auto* error = std::get_if<LocalError>(&decoded)) {
            return make_error(ExitCode::failure, "bad frame from the broker: {}", error->message);
        }
        if (auto written = flush(deadline); !written) return written.take_error();
        pollfd watch{fd_.get(), POLLIN, 0};
        const int ready = ::poll(&watch, 1, poll_timeout(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) {
            if (passed(deadline)) return std::optional<Frame>();
            continue;
        }
        const ssize_t got = ::recv(fd_.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (got == 0) return closed_error();
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            if (errno == ECONNRESET) return closed_error();
            return make_error(ExitCode::unreachable, "cannot read from the broker: {}", std::strerror(errno));
        }
        reader_.feed(ByteView(chunk.data(), static_cast<std::size_t>(got)));
    }
}

Result<Frame> Client::call(nlohmann::json header, ByteView payload, Deadline deadline) {
    const std::string op = header.value("op", std::string("request"));
    auto id = send(std::move(header), payload, deadline);
    if (!id) return id.take_error();
    auto answer = response(*id, deadline);
    if (!answer && answer.error().exit == ExitCode::timeout) return timeout_error(op);
    return answer;
}

Result<std::uint64_t> Client::send(nlohmann::json header, ByteView payload, Deadline deadline) {
    // Behind what is still unsent (a hello of open()), in the same write.
    const std::uint64_t id = next_id_++;
    header["id"] = id;
    append_frame(unsent_, header, payload);
    if (auto written = flush(deadline); !written) return written.take_error();
    return id;
}

Result<Frame> Client::response(std::uint64_t id, Deadline deadline) {
    if (auto early = early_responses_.find(id); early != early_responses_.end()) {
        Frame got = std::move(early->second);
        early_responses_.erase(early);
        if (auto error = response_error(got.header)) return to_error(*error);
        return got;
    }
    for (;;) {
        auto frame = read_frame(deadline);
        if (!frame) return frame.take_error();
        if (!frame->has_value()) return timeout_error(hello_pending_ ? "hello" : fmt::format("request {}", id));
        auto& got = **frame;
        if (got.header.contains("event")) {
            events_.push_back(std::move(got));
            continue;
        }
        const auto echoed = got.header.find("id");
        if (echoed != got.header.end() && echoed->is_number_unsigned() && echoed->get<std::uint64_t>() != id) {
            const auto other = echoed->get<std::uint64_t>();
            if (other > id && other < next_id_) early_responses_.emplace(other, std::move(got));
            continue;  // an answer to a later request is kept; a stale one is dropped
        }
        if (auto error = response_error(got.header)) return to_error(*error);
        return std::move(got);
    }
}

Result<std::optional<Frame>> Client::next_event(Deadline deadline) {
    for (;;) {
        if (!events_.empty()) {
            Frame frame = std::move(events_.front());
            events_.pop_front();
            return std::optional<Frame>(std::move(frame));
        }
        auto read = read_frame(deadline);
        if (!read) return read.take_error();
        if (!read->has_value()) return std::optional<Frame>();
        auto& frame = **read;
        if (frame.header.contains("event")) return std::optional<Frame>(std::move(frame));
        if (auto error = response_error(frame.header); error && frame.header.value("id", nlohmann::json()).is_null()) {
            return to_error(*error);  // e.g. the broker dropping a subscriber that fell behind
        }
        const auto echoed = frame.header.find("id");
        if (echoed != frame.header.end() && echoed->is_number_unsigned()) {
            early_responses_.emplace(echoed->get<std::uint64_t>(), std::move(frame));
        }
    }
}

std::optional<std::string> Client::take_queued(std::uint64_t request_id) {
    for (auto event = events_.begin(); event != events_.end(); ++event) {
        const auto& header = event->header;
        if (header.value("event", std::string()) != "queued") continue;
        const auto request = header.find("request");
        if (request == header.end() || !request->is_number_unsigned() || request->get<std::uint64_t>() != request_id)
            continue;
        auto id = header.value("message_id", std::string());
        events_.erase(event);
        return id;
    }
    return std::nullopt;
}

Result<std::string> Client::publish(const PublishRequest& request, ByteView payload, Deadline deadline) {
    auto answer = call(to_header(request), payload, deadline);
    if (!answer) return answer.take_error();
    return answer->header.value("message_id", std::string());
}

Result<void> Client::subscribe(const SubscribeRequest& request, Deadline deadline) {
    auto answer = call(to_header(request), {}, deadline);
    if (!answer) return answer.take_error();
    return {};
}

Result<std::optional<DeliveredMessage>> Client::next_message(Deadline deadline) {
    for (;;) {
        auto frame = next_event(deadline);
        if (!frame) return frame.take_error();
        if (!frame->has_value()) return std::optional<DeliveredMessage>();
        if (auto message = parse_message_event((*frame)->header, std::move((*frame)->payload))) {
            return std::optional<DeliveredMessage>(std::move(*message));
        }
    }
}

Result<nlohmann::json> Client::status(Deadline deadline) {
    auto answer = call(to_header(StatusRequest{}), {}, deadline);
    if (!answer) return answer.take_error();
    return answer->header.value("status", nlohmann::json::object());
}

Result<void> Client::stop(Deadline deadline) {
    auto answer = call(to_header(StopRequest{}), {}, deadline);
    if (!answer) return answer.take_error();
    for (;;) {
        auto frame = read_frame(deadline);
        if (!frame) {
            if (frame.error().exit == ExitCode::unreachable) return {};  // closed: the broker is gone
            return frame.take_error();
        }
        if (!frame->has_value()) return timeout_error("stop");
    }
}

namespace {

// A process that is gone, or a zombie nobody has reaped yet, has stopped.
[[nodiscard]] bool process_ended(long pid) {
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

}  // namespace

Result<void> stop_broker(const std::filesystem::path& socket, Deadline deadline) {
    auto client = Client::connect(socket, "aegis-connect --stop", deadline);
    if (!client) return client.take_error();
    const long pid = client->hello().value("pid", 0L);
    if (auto stopped = client->stop(deadline); !stopped) return stopped;
    if (pid <= 0) return {};
    while (!process_ended(pid)) {
        if (passed(deadline)) return make_error(ExitCode::timeout, "the broker (pid {}) has not exited yet", pid);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
}

}  // namespace aegis::ipc
