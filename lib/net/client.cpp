// connect(): resolve, TCP, optional HTTP CONNECT proxy, TLS for wss, then the WebSocket upgrade,
// all under one deadline (Limits::handshake_timeout).

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <ctime>
#include <optional>

#include "net/address.h"
#include "net/stream.h"
#include "net/transport_error.h"

namespace aegis::net {
namespace {

namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using Strand = asio::strand<asio::io_context::executor_type>;

[[nodiscard]] bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// "CN=localhost from CN=Aegis test CA, valid 2026-01-01 00:00:00 UTC to ...": a TLS certificate
// as aegis-connect --check names it.
[[nodiscard]] std::string describe_certificate(X509* certificate) {
    const auto name = [](X509_NAME* x509_name) {
        char text[256] = {};
        X509_NAME_oneline(x509_name, text, sizeof text);
        return std::string(text[0] == '/' ? text + 1 : text);
    };
    const auto time = [](const ASN1_TIME* asn1) {
        std::tm tm{};
        if (asn1 == nullptr || ASN1_TIME_to_tm(asn1, &tm) != 1) return std::string("?");
        return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                           tm.tm_hour, tm.tm_min, tm.tm_sec);
    };
    return fmt::format("{} from {}, valid {} to {}", name(X509_get_subject_name(certificate)),
                       name(X509_get_issuer_name(certificate)), time(X509_get0_notBefore(certificate)),
                       time(X509_get0_notAfter(certificate)));
}

// The time of an HTTP Date header (RFC 9110 IMF-fixdate), if it is one.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
    std::tm tm{};
    const std::string copy(text);
    const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') return std::nullopt;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

[[nodiscard]] Result<std::shared_ptr<ssl::context>> make_client_tls(const ClientOptions& options) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!options.tls_verify) return context;
    boost::system::error_code ec;
    context->set_default_verify_paths(ec);  // an empty system store is not an error: tls_ca_file may be all there is
    if (!options.tls_ca_file.empty()) {
        context->load_verify_file(options.tls_ca_file, ec);
        if (ec)
            return make_error(ExitCode::bad_input, "cannot load TLS CA file '{}': {}", options.tls_ca_file,
                              describe(ec));
    }
    return context;
}

template <typename Stream>
[[nodiscard]] WsStream<Stream> make_client_stream(const Strand& strand, ssl::context* tls) {
    if constexpr (is_tls_v<Stream>) {
        return WsStream<Stream>(strand, *tls);
    } else {
        return WsStream<Stream>(strand);
    }
}

template <typename Stream>
class ClientConnect : public std::enable_shared_from_this<ClientConnect<Stream>> {
public:
    ClientConnect(asio::io_context& io, Url url, ClientOptions options, std::optional<HostPort> proxy,
                  std::shared_ptr<ssl::context> tls, ConnectHandler handler)
        : strand_(asio::make_strand(io)),
          resolver_(strand_),
          deadline_(strand_),
          ws_(make_client_stream<Stream>(strand_, tls.get())),
          url_(std::move(url)),
          options_(std::move(options)),
          proxy_(std::move(proxy)),
          tls_(std::move(tls)),
          handler_(std::move(handler)),
          authority_(format_authority(url_.host, url_.port)) {}

    void start() {
        asio::post(strand_, [self = this->shared_from_this()] { self->begin(); });
    }

private:
    void begin() {
        deadline_.expires_after(options_.limits.handshake_timeout);
        deadline_.async_wait(beast::bind_front_handler(&ClientConnect::on_deadline, this->shared_from_this()));
        const auto& dial = proxy_ ? *proxy_ : HostPort{url_.host, url_.port};
        enter("resolve", "resolving the host name");
        resolver_.async_resolve(dial.host, dial.port,
                                beast::bind_front_handler(&ClientConnect::on_resolved, this->shared_from_this()));
    }

    void on_resolved(beast::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (ec || timed_out_) return fail(ec);
        if (options_.on_step) {
            std::vector<std::string> addresses;
            for (const auto& entry : endpoints) addresses.push_back(entry.endpoint().address().to_string());
            passed(fmt::format("{}{} is {}", proxy_ ? "proxy " : "", proxy_ ? proxy_->host : url_.host,
                               fmt::join(addresses, ", ")));
        }
        enter("tcp", "connecting");
        if (!options_.local_address.empty()) return connect_from(endpoints);
        lowest().async_connect(endpoints,
                               beast::bind_front_handler(&ClientConnect::on_connected, this->shared_from_this()));
    }

    // Bound to the local address first, so only the first endpoint of that address's family is
    // tried (connecting to a range reopens the socket, which would drop the binding).
    void connect_from(const tcp::resolver::results_type& endpoints) {
        beast::error_code ec;
        const auto local = asio::ip::make_address(options_.local_address, ec);
        if (ec) {
            return fail(
                make_error(ExitCode::usage, "cannot connect from '{}': not an IP address", options_.local_address));
        }
        for (const auto& entry : endpoints) {
            const auto remote = entry.endpoint();
            if (remote.address().is_v4() != local.is_v4()) continue;
            auto& socket = lowest().socket();
            socket.open(remote.protocol(), ec);
#ifdef IP_BIND_ADDRESS_NO_PORT
            // The port is chosen at connect, by the whole address pair: bind() would otherwise
            // search the address's ports one by one past every socket bound to it (thousands of
            // sessions, or connections in TIME_WAIT, from one address). Best effort.
            if (!ec) {
                beast::error_code ignored;
                socket.set_option(asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true),
                                  ignored);
            }
#endif
            if (!ec) socket.bind(tcp::endpoint(local, 0), ec);
            if (ec) return fail(ec);
            lowest().async_connect(remote, [self = this->shared_from_this(), remote](beast::error_code connected) {
                self->on_connected(connected, remote);
            });
            return;
        }
        fail(make_error(ExitCode::unreachable, "cannot reach {}: no address of the family of {}", authority_,
                        options_.local_address));
    }

    void on_connected(beast::error_code ec, const tcp::endpoint& endpoint) {
        if (ec || timed_out_) return fail(ec);
        passed(fmt::format("{}{}", proxy_ ? "proxy " : "",
                           format_authority(endpoint.address().to_string(), std::to_string(endpoint.port()))));
        lowest().socket().set_option(tcp::no_delay(true), ec);  // small records should not wait for Nagle
        if (proxy_) return ask_proxy();
        secure();
    }

    void ask_proxy() {
        enter("proxy", "waiting for the proxy");
        proxy_request_.method(http::verb::connect);
        proxy_request_.target(authority_);
        proxy_request_.version(11);
        proxy_request_.set(http::field::host, authority_);
        proxy_request_.set(http::field::user_agent, product_name());
        http::async_write(lowest(), proxy_request_,
                          beast::bind_front_handler(&ClientConnect::on_proxy_asked, this->shared_from_this()));
    }

    void on_proxy_asked(beast::error_code ec, std::size_t /*size*/) {
        if (ec || timed_out_) return fail(ec);
        http::async_read_header(lowest(), buffer_, proxy_response_,
                                beast::bind_front_handler(&ClientConnect::on_proxy_answer, this->shared_from_this()));
    }

    void on_proxy_answer(beast::error_code ec, std::size_t /*size*/) {
        if (ec || timed_out_) return fail(ec);
        const auto& answer = proxy_response_.get();
        if (answer.result_int() / 100 != 2) {
            return fail(make_error(ExitCode::unreachable, "cannot reach {}: proxy {} answered {} {}", authority_,
                                   format_authority(proxy_->host, proxy_->port), answer.result_int(),
                                   std::string_view(answer.reason().data(), answer.reason().size())));
        }
        proxy_passed_ = true;
        if (buffer_.size() != 0) {
            return fail(make_error(ExitCode::unreachable,
                                   "cannot reach {}: proxy {} sent data before the tunnel opened", authority_,
                                   format_authority(proxy_->host, proxy_->port)));
        }
        passed(fmt::format("CONNECT {} through {}: {} {}", authority_, format_authority(proxy_->host, proxy_->port),
                           answer.result_int(), std::string_view(answer.reason().data(), answer.reason().size())));
        secure();
    }

    void secure() {
        if constexpr (is_tls_v<Stream>) {
            enter("tls", "TLS handshake");
            auto& tls = ws_.next_layer();
            // SNI carries names only, never address literals (RFC 6066).
            if (!is_ip_literal(url_.host) && SSL_set_tlsext_host_name(tls.native_handle(), url_.host.c_str()) != 1) {
                return fail(
                    make_error(ExitCode::unreachable, "cannot reach {}: cannot set TLS server name", authority_));
            }
            if (options_.tls_verify) {
                tls.set_verify_mode(ssl::verify_peer);
                // The server's own certificate is noted for the step report, even when it does not verify.
                tls.set_verify_callback([verify = ssl::host_name_verification(url_.host), seen = certificate_](
                                            bool preverified, ssl::verify_context& context) mutable {
                    auto* store = context.native_handle();
                    if (X509_STORE_CTX_get_error_depth(store) == 0) {
                        if (auto* certificate = X509_STORE_CTX_get_current_cert(store))
                            *seen = describe_certificate(certificate);
                    }
                    return verify(preverified, context);
                });
            } else {
                tls.set_verify_mode(ssl::verify_none);
            }
            tls.async_handshake(ssl::stream_base::client,
                                beast::bind_front_handler(&ClientConnect::on_secured, this->shared_from_this()));
        } else {
            upgrade();
        }
    }

    void on_secured(beast::error_code ec) {
        if (ec || timed_out_) {
            if constexpr (is_tls_v<Stream>) {
                const auto verify = SSL_get_verify_result(ws_.next_layer().native_handle());
                if (verify != X509_V_OK && !timed_out_) {
                    // Refused: no retry makes an untrusted certificate trusted (aegis-connect fails at once).
                    return fail(make_error(ExitCode::refused, "cannot reach {}: TLS certificate verify failed ({}){}",
                                           authority_, X509_verify_cert_error_string(verify),
                                           certificate_->empty() ? "" : "; certificate " + *certificate_));
                }
            }
            return fail(ec);
        }
        if constexpr (is_tls_v<Stream>) {
            if (options_.on_step) {
                auto* native = ws_.next_layer().native_handle();
                passed(fmt::format("{}{}{}", SSL_get_version(native), certificate_->empty() ? "" : ", certificate ",
                                   *certificate_));
            }
        }
        upgrade();
    }

    void upgrade() {
        enter("upgrade", "WebSocket upgrade");
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& request) { request.set(http::field::user_agent, product_name()); }));
        ws_.async_handshake(upgrade_response_, host_header(), url_.target,
                            beast::bind_front_handler(&ClientConnect::on_upgraded, this->shared_from_this()));
    }

    void on_upgraded(beast::error_code ec) {
        if (ec == websocket::error::upgrade_declined && !timed_out_) {
            return fail(make_error(ExitCode::unreachable,
                                   "cannot reach {}: server answered HTTP {} to the WebSocket upgrade", authority_,
                                   upgrade_response_.result_int()));
        }
        if (ec || timed_out_) return fail(ec);
        if (done_) return;
        if (options_.on_step) {
            const auto date = upgrade_response_[http::field::date];
            ConnectStep step{step_,
                             true,
                             since_step(),
                             fmt::format("GET {} answered {}", url_.target, upgrade_response_.result_int()),
                             {}};
            step.server_time = parse_http_date(std::string_view(date.data(), date.size()));
            options_.on_step(step);
        }
        done_ = true;
        deadline_.cancel();
        auto connection =
            make_connection<Stream>(std::move(ws_), ConnectionSettings{options_.limits, authority_, tls_, {}});
        handler_(std::move(connection));
    }

    void on_deadline(beast::error_code ec) {
        if (ec || done_) return;
        timed_out_ = true;
        resolver_.cancel();
        lowest().close();
    }

    void fail(const beast::error_code& ec) {
        if (timed_out_) {
            return fail(make_error(ExitCode::timeout, "cannot reach {}: timed out after {} ms ({})", authority_,
                                   options_.limits.handshake_timeout.count(), stage_));
        }
        if (proxy_ && !proxy_passed_) {
            return fail(make_error(ExitCode::unreachable, "cannot reach {}: proxy {}: {}", authority_,
                                   format_authority(proxy_->host, proxy_->port), describe(ec)));
        }
        if (auto mismatch = scheme_mismatch(ec)) return fail(std::move(*mismatch));
        fail(connect_error(authority_, ec));
    }

    // A wss:// URL on a ws:// port: the gateway answers the TLS ClientHello with a plain HTTP 400,
    // which OpenSSL reports as a wrong version number. That is certain, so it is refused (no retry
    // makes it work: aegis-connect fails at once). A ws:// URL on a wss:// port only sees the
    // connection closed at the upgrade, as when a server is over its connection limit, so that
    // is retried, with a hint.
    [[nodiscard]] std::optional<Error> scheme_mismatch(const beast::error_code& ec) const {
        const bool closed = ec == asio::error::eof || ec == http::error::end_of_stream ||
                            ec == asio::error::connection_reset || ec == ssl::error::stream_truncated;
        if (!url_.tls && stage_ == "WebSocket upgrade" && closed) {
            return make_error(ExitCode::unreachable,
                              "cannot reach {}: the server closed the connection at the WebSocket upgrade "
                              "(a wss:// server? then use wss://)",
                              authority_);
        }
        if (url_.tls && stage_ == "TLS handshake" && ec.category() == asio::error::get_ssl_category()) {
            const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
            if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
                return make_error(ExitCode::refused, "cannot reach {}: {} (the server does not speak TLS: use ws://)",
                                  authority_, describe(ec));
            }
        }
        return std::nullopt;
    }

    void fail(Error error) {
        if (done_) return;
        if (options_.on_step) options_.on_step(ConnectStep{step_, false, since_step(), error.message, {}});
        done_ = true;
        deadline_.cancel();
        lowest().close();
        handler_(std::move(error));
    }

    [[nodiscard]] beast::tcp_stream& lowest() {
        return beast::get_lowest_layer(ws_);
    }

    // A stage begins: `step` names it in reports, `stage` in error messages.
    void enter(std::string_view step, std::string_view stage) {
        step_ = step;
        stage_ = stage;
        step_started_ = std::chrono::steady_clock::now();
    }

    void passed(std::string detail) {
        if (options_.on_step) options_.on_step(ConnectStep{step_, true, since_step(), std::move(detail), {}});
    }

    [[nodiscard]] std::chrono::microseconds since_step() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - step_started_);
    }

    [[nodiscard]] std::string host_header() const {
        const bool default_port = url_.port == (url_.tls ? "443" : "80");
        if (!default_port) return authority_;
        return url_.host.find(':') == std::string::npos ? url_.host : fmt::format("[{}]", url_.host);
    }

    Strand strand_;
    tcp::resolver resolver_;
    asio::steady_timer deadline_;
    WsStream<Stream> ws_;
    Url url_;
    ClientOptions options_;
    std::optional<HostPort> proxy_;
    std::shared_ptr<ssl::context> tls_;
    ConnectHandler handler_;
    std::string authority_;  // host:port of the WebSocket server, named in every error
    std::string stage_;
    std::string step_;
    std::chrono::steady_clock::time_point step_started_ = std::chrono::steady_clock::now();
    // The server's TLS certificate as the verify callback saw it (shared with that callback).
    std::shared_ptr<std::string> certificate_ = std::make_shared<std::string>();
    beast::flat_buffer buffer_;
    http::request<http::empty_body> proxy_request_;
    http::response_parser<http::empty_body> proxy_response_;
    websocket::response_type upgrade_response_;
    bool done_ = false;
    bool timed_out_ = false;
    bool proxy_passed_ = false;  // errors before this point are the proxy's
};

void fail_soon(asio::io_context& io, ConnectHandler handler, Error error) {
    asio::post(io, [handler = std::move(handler), error = std::move(error)] { handler(error); });
}

}  // namespace

void connect(asio::io_context& io, const Url& url, const ClientOptions& options, ConnectHandler handler) {
    std::optional<HostPort> proxy;
    if (!options.proxy.empty()) {
        auto parsed = parse_proxy_url(options.proxy);
        if (!parsed) return fail_soon(io, std::move(handler), parsed.take_error());
        proxy = std::move(*parsed);
    }
    if (!url.tls) {
        std::make_shared<ClientConnect<PlainStream>>(io, url, options, std::move(proxy), nullptr, std::move(handler))
            ->start();
        return;
    }
    auto tls = make_client_tls(options);
    if (!tls) return fail_soon(io, std::move(handler), tls.take_error());
    std::make_shared<ClientConnect<TlsStream>>(io, url, options, std::move(proxy), std::move(*tls), std::move(handler))
        ->start();
}

}  // namespace aegis::net
