// The one WebSocket connection implementation, for plain and TLS streams alike: a strand per
// connection, one write in flight, a bounded queue, Beast's timeouts and keep-alive pings.

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <optional>
#include <vector>

#include "net/stream.h"
#include "net/transport_error.h"

namespace aegis::net {
namespace {

using Clock = std::chrono::steady_clock;

// What a read waiting for a message holds: enough for the small messages (acknowledgements,
// heartbeats, one short publish) to arrive in one read, little enough for an idle connection.
constexpr std::size_t kFirstReadBytes = 512;

// The messages waiting to be written, oldest first. It holds no memory while empty, as most of a
// gateway's connections are (std::deque allocates about 600 bytes before its first element).
class SendQueue {
public:
    [[nodiscard]] bool empty() const { return head_ == messages_.size(); }
    [[nodiscard]] const Bytes& front() const { return messages_[head_]; }
    void push(Bytes message) { messages_.push_back(std::move(message)); }
    void pop() {
        messages_[head_] = Bytes{};  // its memory goes now, not once the queue drains
        if (++head_ == messages_.size()) return clear();
        // A queue that never drains is compacted once the written half is the larger one.
        if (head_ >= kCompactAfter && 2 * head_ >= messages_.size()) {
            messages_.erase(messages_.begin(), messages_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    void clear() {
        std::vector<Bytes>().swap(messages_);
        head_ = 0;
    }

private:
    static constexpr std::size_t kCompactAfter = 64;
    std::vector<Bytes> messages_;
    std::size_t head_ = 0;  // messages_[0, head_) are written
};

template <typename Stream>
class WsConnection final : public Connection, public std::enable_shared_from_this<WsConnection<Stream>> {
public:
    WsConnection(WsStream<Stream> ws, ConnectionSettings settings)
        : ws_(std::move(ws)),
          settings_(std::move(settings)),
          ping_timer_(ws_.get_executor()),
          close_timer_(ws_.get_executor()) {
        // The WebSocket timeouts take over from the TCP stream's own deadline.
        beast::get_lowest_layer(ws_).expires_never();
        websocket::stream_base::timeout timeouts;
        timeouts.handshake_timeout = settings_.limits.handshake_timeout;
        timeouts.idle_timeout = settings_.limits.idle_timeout;
        timeouts.keep_alive_pings = true;
        ws_.set_option(timeouts);
        ws_.binary(true);
        ws_.read_message_max(settings_.limits.max_message_bytes);
        // Runs only inside this connection's read operation, which holds a reference to it.
        ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
            if (kind == websocket::frame_type::pong) on_pong(payload);
        });
    }

    void start(MessageHandler on_message, CloseHandler on_close) override {
        asio::dispatch(ws_.get_executor(), [self = this->shared_from_this(), on_message = std::move(on_message),
                                            on_close = std::move(on_close)]() mutable {
            self->begin(std::move(on_message), std::move(on_close));
        });
    }

    bool send(Bytes message) override {
        if (closing_ || finished_ || overflowed_) return false;
        const auto size = message.size();
        const auto queued = queued_bytes_.fetch_add(size) + size;
        if (queued > settings_.limits.max_queued_bytes) {
            queued_bytes_ -= size;
            if (!overflowed_.exchange(true)) {
                // Posted, so on_close never runs inside the caller's send().
                asio::post(ws_.get_executor(), [self = this->shared_from_this(), queued] {
                    self->finish(make_error(ExitCode::unreachable,
                                            "connection to {} closed: send queue overflow ({} bytes queued, limit {})",
                                            self->settings_.peer, queued, self->settings_.limits.max_queued_bytes));
                });
            }
            return false;
        }
        // Always posted, never run inline: a send from inside this strand (a read handler) must not
        // overtake one posted from outside it before, since each record's nonce is its place in the
        // stream and the peer fails any record out of order.
        asio::post(ws_.get_executor(), [self = this->shared_from_this(), message = std::move(message)]() mutable {
            self->enqueue(std::move(message));
        });
        return true;
    }

    void close() override {
        if (closing_.exchange(true)) return;
        // Posted like send(), so that it comes after every message queued before it.
        asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->begin_close(); });
    }

    void limit_message_size(std::size_t max_bytes) override {
        asio::dispatch(ws_.get_executor(), [self = this->shared_from_this(), max_bytes] {
            self->settings_.limits.max_message_bytes = max_bytes;
            self->ws_.read_message_max(max_bytes);
        });
    }

    [[nodiscard]] std::string peer() const override { return settings_.peer; }
    [[nodiscard]] std::size_t queued_bytes() const override { return queued_bytes_; }
    [[nodiscard]] std::chrono::microseconds last_rtt() const override { return std::chrono::microseconds(rtt_us_); }

private:
    void begin(MessageHandler on_message, CloseHandler on_close) {
        if (started_) return;
        started_ = true;
        if (finished_) {
            if (on_close && final_error_)
                asio::post(ws_.get_executor(),
                           [on_close = std::move(on_close), why = *final_error_] { on_close(why); });
            return;
        }
        on_message_ = std::move(on_message);
        on_close_ = std::move(on_close);
        read_next();
        schedule_ping();
    }

    // A read waiting for the next message holds kFirstReadBytes of buffer, not the 1,536 that a
    // plain async_read prepares: an idle connection, which is most of a gateway's, waits all the
    // time. A longer message is read on into a buffer of its size, which is given back when the
    // message has been handed on; a short one leaves the small buffer for the next read.
    void read_next() {
        ws_.async_read_some(read_buffer_, kFirstReadBytes,
                            beast::bind_front_handler(&WsConnection::on_read, this->shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t /*size*/) {
        if (finished_) return;
        if (ec) {
            if (closing_ && close_sent_) return;  // the close operation reports the end
            if (closing_ && ec == websocket::error::closed) return finish(closed_normally());
            return finish(connection_error(settings_.peer, ec, close_reason(), settings_.limits.max_message_bytes));
        }
        if (!ws_.is_message_done()) {
            // 0: Beast sizes the read by what is left of the frame.
            ws_.async_read_some(read_buffer_, 0,
                                beast::bind_front_handler(&WsConnection::on_read, this->shared_from_this()));
            return;
        }
        const auto* data = static_cast<const std::uint8_t*>(read_buffer_.data().data());
        Bytes message(data, data + read_buffer_.size());
        read_buffer_.clear();
        if (read_buffer_.capacity() > kFirstReadBytes) read_buffer_.shrink_to_fit();
        if (on_message_) on_message_(std::move(message));
        if (!finished_) read_next();
    }

    void enqueue(Bytes message) {
        if (finished_ || close_sent_) {
            queued_bytes_ -= message.size();
            return;
        }
        queue_.push(std::move(message));
        if (!writing_) write_next();
    }

    void write_next() {
        writing_ = true;
        ws_.async_write(asio::buffer(queue_.front()),
                        beast::bind_front_handler(&WsConnection::on_write, this->shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t /*size*/) {
        writing_ = false;
        if (finished_) {
            drop_queue();
            return;
        }
        if (ec) return finish(connection_error(settings_.peer, ec, close_reason(), settings_.limits.max_message_bytes));
        queued_bytes_ -= queue_.front().size();
        queue_.pop();
        if (!queue_.empty()) return write_next();
        send_close_when_idle();
    }

    void schedule_ping() {
        if (settings_.limits.ping_interval <= std::chrono::milliseconds::zero()) return;
        ping_timer_.expires_after(settings_.limits.ping_interval);
        ping_timer_.async_wait(beast::bind_front_handler(&WsConnection::on_ping_timer, this->shared_from_this()));
    }

    void on_ping_timer(beast::error_code ec) {
        if (ec || finished_ || closing_) return;
        if (!ping_in_flight_) {
            ping_in_flight_ = true;
            ping_payload_ = std::to_string(++ping_sequence_);
            ping_sent_ = Clock::now();
            ws_.async_ping(websocket::ping_data(ping_payload_.c_str()),
                           beast::bind_front_handler(&WsConnection::on_ping_sent, this->shared_from_this()));
        }
        schedule_ping();
    }

    void on_ping_sent(beast::error_code ec) {
        ping_in_flight_ = false;
        if (finished_) return;
        if (ec) return finish(connection_error(settings_.peer, ec, close_reason(), settings_.limits.max_message_bytes));
        send_close_when_idle();
    }

    void on_pong(beast::string_view payload) {
        if (ping_payload_.empty() || payload != ping_payload_) return;  // Beast's own keep-alive pings carry none
        const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ping_sent_);
        rtt_us_ = std::max<std::int64_t>(1, rtt.count());
        ping_payload_.clear();
    }

    void begin_close() {
        if (finished_) return;
        ping_timer_.cancel();
        close_timer_.expires_after(settings_.limits.handshake_timeout);
        close_timer_.async_wait(beast::bind_front_handler(&WsConnection::on_close_timer, this->shared_from_this()));
        send_close_when_idle();
    }

    // The close frame goes out once the queue is flushed and no ping is being written.
    void send_close_when_idle() {
        if (!closing_ || close_sent_ || writing_ || ping_in_flight_ || !queue_.empty() || finished_) return;
        close_sent_ = true;
        ws_.async_close(websocket::close_code::normal,
                        beast::bind_front_handler(&WsConnection::on_closed, this->shared_from_this()));
    }

    void on_closed(beast::error_code ec) {
        if (finished_) return;
        if (ec && ec != websocket::error::closed)
            return finish(connection_error(settings_.peer, ec, close_reason(), settings_.limits.max_message_bytes));
        finish(closed_normally());
    }

    void on_close_timer(beast::error_code ec) {
        if (ec || finished_) return;
        finish(make_error(ExitCode::timeout, "closing the connection to {} timed out", settings_.peer));
    }

    [[nodiscard]] Error closed_normally() const {
        return make_error(ExitCode::ok, "connection to {} closed", settings_.peer);
    }

    [[nodiscard]] std::string close_reason() const {
        const auto& reason = ws_.reason();
        if (reason.code == websocket::close_code::none) return {};
        if (reason.reason.empty()) return fmt::format("close code {}", static_cast<unsigned>(reason.code));
        return fmt::format("close code {}: {}", static_cast<unsigned>(reason.code),
                           std::string_view(reason.reason.data(), reason.reason.size()));
    }

    void drop_queue() {
        queue_.clear();
        queued_bytes_ = 0;
    }

    // Ends the connection once: stops the timers, closes the socket, reports why.
    void finish(Error why) {
        if (finished_.exchange(true)) return;
        closing_ = true;
        ping_timer_.cancel();
        close_timer_.cancel();
        beast::get_lowest_layer(ws_).close();
        if (!writing_) drop_queue();  // otherwise the write in flight still uses the front buffer
        settings_.lease.reset();
        final_error_ = why;
        auto on_close = std::move(on_close_);
        on_close_ = nullptr;
        on_message_ = nullptr;
        if (on_close) on_close(why);
    }

    WsStream<Stream> ws_;
    ConnectionSettings settings_;
    asio::steady_timer ping_timer_;
    asio::steady_timer close_timer_;
    beast::flat_buffer read_buffer_;
    SendQueue queue_;
    MessageHandler on_message_;
    CloseHandler on_close_;
    std::optional<Error> final_error_;

    // Read by send()/close()/queued_bytes()/last_rtt(), which may run outside the strand.
    std::atomic<std::size_t> queued_bytes_{0};
    std::atomic<bool> closing_{false};
    std::atomic<bool> finished_{false};
    std::atomic<bool> overflowed_{false};
    std::atomic<std::int64_t> rtt_us_{0};

    // Strand only.
    bool started_ = false;
    bool writing_ = false;
    bool ping_in_flight_ = false;
    bool close_sent_ = false;
    std::uint64_t ping_sequence_ = 0;
    std::string ping_payload_;
    Clock::time_point ping_sent_{};
};

}  // namespace

template <typename Stream>
std::shared_ptr<Connection> make_connection(WsStream<Stream> ws, ConnectionSettings settings) {
    return std::make_shared<WsConnection<Stream>>(std::move(ws), std::move(settings));
}

template std::shared_ptr<Connection> make_connection<PlainStream>(WsStream<PlainStream>, ConnectionSettings);
template std::shared_ptr<Connection> make_connection<TlsStream>(WsStream<TlsStream>, ConnectionSettings);

}  // namespace aegis::net
