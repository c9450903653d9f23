#include "wire.h"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cstdlib>
#include <functional>

namespace aegis::attack {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace wsock = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Wire::Impl {
    asio::io_context io;

    // Runs the loop until `done` is set or the time is up; then `cancel` ends the operation and the
    // loop runs until its handler has run (handlers refer to the caller's frame).
    template <typename Cancel>
    bool run(const bool& done, Ms timeout, Cancel cancel) {
        const auto deadline = Clock::now() + timeout;
        io.restart();
        while (!done && Clock::now() < deadline) {
            if (io.run_one_until(deadline) == 0) io.restart();
        }
        if (done) return true;
        cancel();
        io.restart();
        while (!done) {
            if (io.run_one_for(std::chrono::seconds(10)) == 0) std::abort();  // a cancelled handler must run
        }
        return false;
    }
};

namespace {

const auto kLoopback = asio::ip::make_address("127.0.0.1");

Error wire_error(std::string_view what, const beast::error_code& ec) {
    return make_error(ExitCode::unreachable, "{}: {}", what, ec.message());
}

class PeerBase : public Peer {
public:
    // Reads until the peer ends the connection; then calls on_end once.
    virtual void watch(std::function<void()> on_end) = 0;
    virtual void cancel() = 0;
};

class TcpPeer final : public PeerBase {
public:
    TcpPeer(Wire::Impl& wire, tcp::socket socket) : wire_(wire), socket_(std::move(socket)) {}

    Result<void> send(ByteView message, Ms timeout) override {
        bool done = false;
        beast::error_code result;
        asio::async_write(socket_, asio::buffer(message.data(), message.size()),
                          [&](beast::error_code ec, std::size_t) {
                              result = ec;
                              done = true;
                          });
        if (!wire_.run(done, timeout, [&] { cancel(); })) return make_error(ExitCode::timeout, "send timed out");
        if (result) return wire_error("send", result);
        return {};
    }

    Result<void> send_fragment(ByteView part, bool /*last*/, Ms timeout) override { return send(part, timeout); }

    Received receive(Ms timeout) override {
        Received out;
        bool done = false;
        std::array<std::uint8_t, 4096> chunk{};
        beast::error_code result;
        std::size_t size = 0;
        socket_.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
            result = ec;
            size = n;
            done = true;
        });
        if (!wire_.run(done, timeout, [&] { cancel(); })) return out;
        if (result) {
            out.ending = Ending::closed;
            out.close_reason = result.message();
            return out;
        }
        out.ending = Ending::message;
        out.message.assign(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(size));
        return out;
    }

    bool is_websocket() const override { return false; }

    void watch(std::function<void()> on_end) override {
        socket_.async_read_some(asio::buffer(sink_),
                                [this, on_end = std::move(on_end)](beast::error_code ec, std::size_t) mutable {
                                    if (ec) return on_end();
                                    watch(std::move(on_end));
                                });
    }

    void cancel() override {
        beast::error_code ignored;
        socket_.cancel(ignored);
    }

private:
    Wire::Impl& wire_;
    tcp::socket socket_;
    std::array<std::uint8_t, 4096> sink_{};
};

class WsPeer final : public PeerBase {
public:
    WsPeer(Wire::Impl& wire, wsock::stream<beast::tcp_stream> ws) : wire_(wire), ws_(std::move(ws)) {
        ws_.binary(true);
        ws_.auto_fragment(false);
        ws_.read_message_max(64 * 1024 * 1024);
    }

    Result<void> send(ByteView message, Ms timeout) override {
        bool done = false;
        beast::error_code result;
        ws_.async_write(asio::buffer(message.data(), message.size()), [&](beast::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
        return finish_write(done, result, timeout);
    }

    Result<void> send_fragment(ByteView part, bool last, Ms timeout) override {
        bool done = false;
        beast::error_code result;
        ws_.async_write_some(last, asio::buffer(part.data(), part.size()), [&](beast::error_code ec, std::size_t) {
            result = ec;
            done = true;
        });
        return finish_write(done, result, timeout);
    }

    Received receive(Ms timeout) override {
        Received out;
        if (broken_) {
            out.ending = Ending::closed;
            out.close_reason = "stream unusable after an earlier cancelled operation";
            return out;
        }
        bool done = false;
        beast::error_code result;
        std::size_t size = 0;
        ws_.async_read(buffer_, [&](beast::error_code ec, std::size_t n) {
            result = ec;
            size = n;
            done = true;
        });
        if (!wire_.run(done, timeout, [&] { cancel(); })) {
            broken_ = true;
            return out;
        }
        if (result) {
            out.ending = Ending::closed;
            const auto& reason = ws_.reason();
            out.close_reason = reason.code != wsock::close_code::none
                                   ? fmt::format("close code {}", static_cast<unsigned>(reason.code))
                                   : result.message();
            return out;
        }
        const auto* data = static_cast<const std::uint8_t*>(buffer_.data().data());
        out.ending = Ending::message;
        out.message.assign(data, data + size);
        buffer_.consume(size);
        return out;
    }

    bool is_websocket() const override { return true; }

    void watch(std::function<void()> on_end) override {
        if (broken_) {
            // The WebSocket layer gave up after a cancel: watch the socket underneath instead.
            beast::get_lowest_layer(ws_).socket().async_read_some(
                asio::buffer(sink_), [this, on_end = std::move(on_end)](beast::error_code ec, std::size_t) mutable {
                    if (ec) return on_end();
                    watch(std::move(on_end));
                });
            return;
        }
        ws_.async_read(buffer_, [this, on_end = std::move(on_end)](beast::error_code ec, std::size_t n) mutable {
            if (ec) return on_end();
            buffer_.consume(n);
            watch(std::move(on_end));
        });
    }

    void cancel() override {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().cancel(ignored);
    }

private:
    Result<void> finish_write(const bool& done, const beast::error_code& result, Ms timeout) {
        if (!wire_.run(done, timeout, [&] { cancel(); })) {
            broken_ = true;
            return make_error(ExitCode::timeout, "send timed out");
        }
        if (result) return wire_error("send", result);
        return {};
    }

    Wire::Impl& wire_;
    wsock::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    std::array<std::uint8_t, 4096> sink_{};
    bool broken_ = false;
};

Result<tcp::socket> connect_tcp(Wire::Impl& wire, std::uint16_t port, Ms timeout) {
    tcp::socket socket(wire.io);
    bool done = false;
    beast::error_code result;
    socket.async_connect(tcp::endpoint(kLoopback, port), [&](beast::error_code ec) {
        result = ec;
        done = true;
    });
    if (!wire.run(done, timeout, [&] {
            beast::error_code ignored;
            socket.cancel(ignored);
        }))
        return make_error(ExitCode::timeout, "TCP connect timed out");
    if (result) return wire_error("TCP connect", result);
    return socket;
}

}  // namespace

Wire::Wire() : impl_(std::make_unique<Impl>()) {}
Wire::~Wire() = default;

Result<std::unique_ptr<Peer>> Wire::tcp(std::uint16_t port, Ms timeout) {
    auto socket = connect_tcp(*impl_, port, timeout);
    if (!socket) return socket.take_error();
    return std::unique_ptr<Peer>(std::make_unique<TcpPeer>(*impl_, std::move(socket.value())));
}

Result<std::unique_ptr<Peer>> Wire::websocket(std::uint16_t port, Ms timeout) {
    const auto started = Clock::now();
    auto socket = connect_tcp(*impl_, port, timeout);
    if (!socket) return socket.take_error();
    wsock::stream<beast::tcp_stream> ws(std::move(socket.value()));
    bool done = false;
    beast::error_code result;
    ws.async_handshake(fmt::format("127.0.0.1:{}", port), "/", [&](beast::error_code ec) {
        result = ec;
        done = true;
    });
    const auto left = std::max(Ms(1), timeout - std::chrono::duration_cast<Ms>(Clock::now() - started));
    if (!impl_->run(done, left, [&] {
            beast::error_code ignored;
            beast::get_lowest_layer(ws).socket().cancel(ignored);
        }))
        return make_error(ExitCode::timeout, "WebSocket upgrade timed out");
    if (result) return wire_error("WebSocket upgrade", result);
    return std::unique_ptr<Peer>(std::make_unique<WsPeer>(*impl_, std::move(ws)));
}

std::vector<std::optional<Ms>> Wire::wait_closed(const std::vector<Peer*>& peers, Ms timeout) {
    const auto started = Clock::now();
    std::vector<std::optional<Ms>> ended(peers.size());
    std::size_t open = peers.size();
    bool done = open == 0;
    for (std::size_t i = 0; i < peers.size(); ++i) {
        static_cast<PeerBase*>(peers[i])->watch([&, i] {
            ended[i] = std::chrono::duration_cast<Ms>(Clock::now() - started);
            if (--open == 0) done = true;
        });
    }
    impl_->run(done, timeout, [&] {
        for (std::size_t i = 0; i < peers.size(); ++i)
            if (!ended[i]) static_cast<PeerBase*>(peers[i])->cancel();
    });
    // Cancelled watches report too; they were still open at the deadline.
    for (auto& time : ended)
        if (time && *time >= timeout) time.reset();
    return ended;
}

}  // namespace aegis::attack
