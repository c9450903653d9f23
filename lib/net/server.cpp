// Server::listen: accepts TCP, does TLS (when configured) and the WebSocket upgrade under
// Limits::handshake_timeout, and hands each upgraded connection to the caller.

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <ctime>
#include <optional>

#include "net/acceptor.h"
#include "net/stream.h"
#include "net/transport_error.h"

namespace aegis::net {
namespace {

namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;

constexpr std::size_t max_upgrade_request_bytes = 8 * 1024;

// RFC 9110 IMF-fixdate: "Mon, 07 Dec 2026 08:00:00 GMT".
[[nodiscard]] std::string http_date_now() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[64] = {};
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);  // the C locale: English names
    return text;
}
constexpr std::chrono::milliseconds accept_retry_delay{100};

[[nodiscard]] Result<std::shared_ptr<ssl::context>> make_server_tls(const ServerOptions& options) {
    if (options.tls_cert_file.empty() && options.tls_key_file.empty()) return std::shared_ptr<ssl::context>{};
    if (options.tls_cert_file.empty() || options.tls_key_file.empty())
        return make_error(ExitCode::usage, "TLS needs both a certificate file and a key file");
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    boost::system::error_code ec;
    context->use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec)
        return make_error(ExitCode::bad_input, "cannot load TLS certificate '{}': {}", options.tls_cert_file,
                          describe(ec));
    context->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
    if (ec) return make_error(ExitCode::bad_input, "cannot load TLS key '{}': {}", options.tls_key_file, describe(ec));
    return context;
}

// What the accept loop and the handshakes in flight share; outlives the Server object.
struct Listener {
    Listener(asio::io_context& context, tcp::acceptor bound, ServerOptions server_options,
             std::shared_ptr<ssl::context> tls_context, Server::AcceptHandler handler)
        : io(context),
          acceptor(std::move(bound)),
          retry(acceptor.get_executor()),
          options(std::move(server_options)),
          tls(std::move(tls_context)),
          on_accept(std::move(handler)),
          port(acceptor.local_endpoint().port()) {}

    asio::io_context& io;
    tcp::acceptor acceptor;
    asio::steady_timer retry;
    ServerOptions options;
    std::shared_ptr<ssl::context> tls;
    Server::AcceptHandler on_accept;
    std::uint16_t port;
    tcp::endpoint peer;  // the accept in flight writes its peer's address here (one at a time)
    std::atomic<bool> stopped{false};
    // Shared with each connection's lease, which may outlive the listener.
    std::shared_ptr<std::atomic<std::size_t>> live = std::make_shared<std::atomic<std::size_t>>(0);
};

[[nodiscard]] std::shared_ptr<void> make_lease(const std::shared_ptr<std::atomic<std::size_t>>& live) {
    ++*live;
    return {nullptr, [live](void*) { --*live; }};
}

template <typename Stream>
[[nodiscard]] WsStream<Stream> make_server_stream(tcp::socket socket, ssl::context* tls) {
    if constexpr (is_tls_v<Stream>) {
        return WsStream<Stream>(std::move(socket), *tls);
    } else {
        return WsStream<Stream>(std::move(socket));
    }
}

// One accepted socket on its way to an upgraded WebSocket.
template <typename Stream>
class Upgrade : public std::enable_shared_from_this<Upgrade<Stream>> {
public:
    Upgrade(tcp::socket socket, std::string peer, std::shared_ptr<Listener> listener, std::shared_ptr<void> lease)
        : peer_(std::move(peer)),
          tls_(listener->tls),
          ws_(make_server_stream<Stream>(std::move(socket), tls_.get())),
          deadline_(ws_.get_executor()),
          listener_(std::move(listener)),
          lease_(std::move(lease)) {}

    void start() {
        asio::dispatch(ws_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
    }

private:
    void begin() {
        deadline_.expires_after(listener_->options.limits.handshake_timeout);
        deadline_.async_wait(beast::bind_front_handler(&Upgrade::on_deadline, this->shared_from_this()));
        if constexpr (is_tls_v<Stream>) {
            ws_.next_layer().async_handshake(ssl::stream_base::server,
                                             beast::bind_front_handler(&Upgrade::on_secured, this->shared_from_this()));
        } else {
            read_request();
        }
    }

    void on_secured(beast::error_code ec) {
        if (ec || done_) return abandon(ec ? "tls_failed" : "upgrade_failed", ec ? tls_failure(ec) : std::string());
        read_request();
    }

    // "TLS handshake failed: <what OpenSSL says>", naming the usual causes plainly.
    static std::string tls_failure(const beast::error_code& ec) {
        const auto what = describe(ec);
        if (what.find("http request") != std::string::npos)
            return fmt::format("TLS handshake failed: {} (a ws:// client on the wss:// port?)", what);
        return fmt::format("TLS handshake failed: {}", what);
    }

    void read_request() {
        parser_.emplace();
        parser_->header_limit(max_upgrade_request_bytes);
        http::async_read(ws_.next_layer(), buffer_, *parser_,
                         beast::bind_front_handler(&Upgrade::on_request, this->shared_from_this()));
    }

    void on_request(beast::error_code ec, std::size_t /*size*/) {
        if (ec && !done_ && ec.category() == http::make_error_code(http::error::bad_method).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
            return answer_garbage(ec);
        }
        if (ec || done_) return abandon("upgrade_failed", ec ? describe(ec) : std::string());
        request_ = parser_->release();
        if (!websocket::is_upgrade(request_)) return refuse();
        ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
            response.set(http::field::server, product_name());
            // The gateway's clock, so that aegis-connect --check can compare it with its own.
            response.set(http::field::date, http_date_now());
        }));
        ws_.async_accept(request_, beast::bind_front_handler(&Upgrade::on_accepted, this->shared_from_this()));
    }

    // A plain HTTP request on the WebSocket port: say so, then hang up.
    void refuse() {
        refusal_.result(http::status::upgrade_required);
        refusal_.version(request_.version());
        refusal_.set(http::field::server, product_name());
        refusal_.set(http::field::connection, "Upgrade");
        refusal_.set(http::field::upgrade, "websocket");
        refusal_.set(http::field::content_type, "text/plain; charset=utf-8");
        refusal_.body() = "This is a WebSocket endpoint.\n";
        refusal_.keep_alive(false);
        refusal_.prepare_payload();
        http::async_write(ws_.next_layer(), refusal_,
                          beast::bind_front_handler(&Upgrade::on_refused, this->shared_from_this()));
    }

    void on_refused(beast::error_code /*ec*/, std::size_t /*size*/) {
        abandon("upgrade_failed", "not a WebSocket upgrade");
    }

    // Bytes that are not HTTP (a TLS ClientHello from a wss:// client, most often): a plain 400,
    // which such a client's TLS layer reports as "wrong version number", so it can tell the user
    // to use ws:// instead of retrying (a bare close would look like an overloaded server).
    void answer_garbage(const beast::error_code& ec) {
        garbage_ = describe(ec);
        refusal_.result(http::status::bad_request);
        refusal_.version(11);
        refusal_.set(http::field::server, product_name());
        refusal_.set(http::field::content_type, "text/plain; charset=utf-8");
        refusal_.body() = "Not an HTTP request. This is a WebSocket endpoint (ws://).\n";
        refusal_.keep_alive(false);
        refusal_.prepare_payload();
        http::async_write(
            ws_.next_layer(), refusal_, [self = this->shared_from_this()](beast::error_code, std::size_t) {
                self->abandon("upgrade_failed",
                              fmt::format("not HTTP ({}; a wss:// client on the ws:// port?)", self->garbage_));
            });
    }

    void on_accepted(beast::error_code ec) {
        if (ec || done_ || listener_->stopped) return abandon("upgrade_failed", ec ? describe(ec) : std::string());
        done_ = true;
        deadline_.cancel();
        auto connection = make_connection<Stream>(
            std::move(ws_), ConnectionSettings{listener_->options.limits, peer_, tls_, std::move(lease_)});
        listener_->on_accept(std::move(connection));
    }

    void on_deadline(beast::error_code ec) {
        if (ec || done_) return;
        abandon("upgrade_timeout", {});
    }

    void abandon(std::string_view reason, std::string detail) {
        if (done_) return;
        done_ = true;
        deadline_.cancel();
        beast::get_lowest_layer(ws_).close();
        lease_.reset();
        if (!listener_->stopped && listener_->options.on_refused) listener_->options.on_refused(reason, peer_, detail);
    }

    std::string peer_;
    std::shared_ptr<ssl::context> tls_;  // the pair this connection started with, even after a reload
    WsStream<Stream> ws_;
    asio::steady_timer deadline_;
    std::shared_ptr<Listener> listener_;
    std::shared_ptr<void> lease_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::empty_body>> parser_;
    http::request<http::empty_body> request_;
    http::response<http::string_body> refusal_;
    std::string garbage_;  // what the parser said of bytes that were not HTTP
    bool done_ = false;
};

void accept_next(const std::shared_ptr<Listener>& listener);

void on_socket(const std::shared_ptr<Listener>& listener, beast::error_code ec, tcp::socket socket) {
    if (listener->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
        // Out of descriptors and the like: try again shortly instead of spinning.
        listener->retry.expires_after(accept_retry_delay);
        listener->retry.async_wait([listener](beast::error_code wait_ec) {
            if (!wait_ec) accept_next(listener);
        });
        return;
    }
    // The address accept() returned: no getpeername() per connection.
    auto peer = format_endpoint(listener->peer);
    if (*listener->live >= listener->options.max_connections) {
        if (listener->options.on_refused) listener->options.on_refused("connection_limit", peer, {});
        socket.close(ec);
        accept_next(listener);
        return;
    }
    // TCP_NODELAY comes from the listening socket, which Linux's accepted sockets inherit
    // (Server::listen); other systems set it on each one.
#ifndef __linux__
    socket.set_option(tcp::no_delay(true), ec);
#endif
    if (listener->tls) {
        std::make_shared<Upgrade<TlsStream>>(std::move(socket), std::move(peer), listener, make_lease(listener->live))
            ->start();
    } else {
        std::make_shared<Upgrade<PlainStream>>(std::move(socket), std::move(peer), listener, make_lease(listener->live))
            ->start();
    }
    accept_next(listener);
}

void accept_next(const std::shared_ptr<Listener>& listener) {
    // Each connection gets its own strand.
    listener->acceptor.async_accept(
        asio::make_strand(listener->io), listener->peer,
        [listener](beast::error_code ec, tcp::socket socket) { on_socket(listener, ec, std::move(socket)); });
}

class ServerImpl final : public Server {
public:
    explicit ServerImpl(std::shared_ptr<Listener> listener) : listener_(std::move(listener)) {}
    ~ServerImpl() override { stop(); }
    ServerImpl(const ServerImpl&) = delete;
    ServerImpl& operator=(const ServerImpl&) = delete;

    [[nodiscard]] std::uint16_t port() const override { return listener_->port; }
    [[nodiscard]] std::size_t connections() const override { return *listener_->live; }

    Result<void> reload_tls() override {
        if (!listener_->tls) return {};
        auto fresh = make_server_tls(listener_->options);
        if (!fresh) return fresh.take_error();
        // Swapped on the acceptor's executor, where new connections read it.
        asio::dispatch(listener_->acceptor.get_executor(),
                       [listener = listener_, tls = std::move(*fresh)]() mutable { listener->tls = std::move(tls); });
        return {};
    }

    void stop() override {
        if (listener_->stopped.exchange(true)) return;
        asio::dispatch(listener_->acceptor.get_executor(), [listener = listener_] {
            beast::error_code ec;
            listener->acceptor.close(ec);
            listener->retry.cancel();
        });
    }

private:
    std::shared_ptr<Listener> listener_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(asio::io_context& io, const ServerOptions& options,
                                               AcceptHandler on_accept) {
    auto tls = make_server_tls(options);
    if (!tls) return tls.take_error();
    auto acceptor = open_acceptor(asio::make_strand(io), options.listen);
    if (!acceptor) return acceptor.take_error();
    // Small records should not wait for Nagle (as client.cpp): set once here, accepted sockets
    // inherit it on Linux.
    boost::system::error_code ec;
    acceptor->set_option(tcp::no_delay(true), ec);
    auto listener =
        std::make_shared<Listener>(io, std::move(*acceptor), options, std::move(*tls), std::move(on_accept));
    asio::dispatch(listener->acceptor.get_executor(), [listener] { accept_next(listener); });
    return std::unique_ptr<Server>(std::make_unique<ServerImpl>(std::move(listener)));
}

}  // namespace aegis::net
