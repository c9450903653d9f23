// AdminServer: one request per connection, answered by the caller's handler, then the connection
// closes. Requests are small and bounded in size and time.

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

#include "net/acceptor.h"
#include "net/stream.h"

namespace aegis::net {
namespace {

namespace http = boost::beast::http;

constexpr std::size_t max_request_bytes = 8 * 1024;
constexpr std::chrono::seconds request_timeout{10};

struct AdminListener {
    AdminListener(asio::io_context& context, tcp::acceptor bound, AdminServer::RequestHandler admin_handler)
        : io(context),
          acceptor(std::move(bound)),
          handler(std::move(admin_handler)),
          port(acceptor.local_endpoint().port()),
          local(acceptor.local_endpoint().address().is_loopback()) {}

    asio::io_context& io;
    tcp::acceptor acceptor;
    AdminServer::RequestHandler handler;
    std::uint16_t port;
    bool local;
    std::atomic<bool> stopped{false};
};

class AdminExchange : public std::enable_shared_from_this<AdminExchange> {
public:
    AdminExchange(tcp::socket socket, std::shared_ptr<AdminListener> listener)
        : stream_(std::move(socket)), listener_(std::move(listener)) {}

    void start() {
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
    }

private:
    void read_request() {
        stream_.expires_after(request_timeout);
        parser_.header_limit(max_request_bytes);
        parser_.body_limit(max_request_bytes);
        http::async_read(stream_, buffer_, parser_,
                         beast::bind_front_handler(&AdminExchange::on_request, shared_from_this()));
    }

    void on_request(beast::error_code ec, std::size_t /*size*/) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted)
            return stream_.close();
        if (ec) return respond(HttpResponse{400, "text/plain; charset=utf-8", "bad request\n"}, 11);
        const auto& request = parser_.get();
        const std::string_view target(request.target().data(), request.target().size());
        HttpRequest asked;
        asked.method.assign(request.method_string().data(), request.method_string().size());
        asked.path = std::string(target.substr(0, target.find('?')));
        asked.body = request.body();
        asked.local = listener_->local;
        beast::error_code ec_peer;
        const auto peer = stream_.socket().remote_endpoint(ec_peer);
        if (!ec_peer) asked.peer = fmt::format("{}:{}", peer.address().to_string(), peer.port());
        respond(listener_->handler(asked), request.version());
    }

    void respond(const HttpResponse& answer, unsigned version) {
        if (!answer.allow.empty()) response_.set(http::field::allow, answer.allow);
        response_.result(static_cast<unsigned>(answer.status));
        response_.version(version);
        response_.set(http::field::server, product_name());
        response_.set(http::field::content_type, answer.content_type);
        response_.body() = answer.body;
        response_.keep_alive(false);
        response_.prepare_payload();
        http::async_write(stream_, response_,
                          beast::bind_front_handler(&AdminExchange::on_written, shared_from_this()));
    }

    void on_written(beast::error_code /*ec*/, std::size_t /*size*/) {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.close();
    }

    beast::tcp_stream stream_;
    std::shared_ptr<AdminListener> listener_;
    beast::flat_buffer buffer_;
    http::request_parser<http::string_body> parser_;
    http::response<http::string_body> response_;
};

void accept_admin(const std::shared_ptr<AdminListener>& listener) {
    listener->acceptor.async_accept(asio::make_strand(listener->io),
                                    [listener](beast::error_code ec, tcp::socket socket) {
                                        if (listener->stopped || ec == asio::error::operation_aborted) return;
                                        if (!ec) std::make_shared<AdminExchange>(std::move(socket), listener)->start();
                                        accept_admin(listener);
                                    });
}

class AdminServerImpl final : public AdminServer {
public:
    explicit AdminServerImpl(std::shared_ptr<AdminListener> listener) : listener_(std::move(listener)) {}
    ~AdminServerImpl() override { stop(); }
    AdminServerImpl(const AdminServerImpl&) = delete;
    AdminServerImpl& operator=(const AdminServerImpl&) = delete;

    [[nodiscard]] std::uint16_t port() const override { return listener_->port; }

    void stop() override {
        if (listener_->stopped.exchange(true)) return;
        asio::dispatch(listener_->acceptor.get_executor(), [listener = listener_] {
            beast::error_code ec;
            listener->acceptor.close(ec);
        });
    }

private:
    std::shared_ptr<AdminListener> listener_;
};

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::listen(asio::io_context& io, std::string_view host_port,
                                                         Handler handler) {
    return listen(io, host_port, RequestHandler([get = std::move(handler)](const HttpRequest& request) {
                      if (request.method != "GET") {
                          HttpResponse refused{405, "text/plain; charset=utf-8", "only GET is supported\n"};
                          refused.allow = "GET";
                          return refused;
                      }
                      return get(request.path);
                  }));
}

Result<std::unique_ptr<AdminServer>> AdminServer::listen(asio::io_context& io, std::string_view host_port,
                                                         RequestHandler handler) {
    auto acceptor = open_acceptor(asio::make_strand(io), host_port);
    if (!acceptor) return acceptor.take_error();
    auto listener = std::make_shared<AdminListener>(io, std::move(*acceptor), std::move(handler));
    asio::dispatch(listener->acceptor.get_executor(), [listener] { accept_admin(listener); });
    return std::unique_ptr<AdminServer>(std::make_unique<AdminServerImpl>(std::move(listener)));
}

}  // namespace aegis::net
