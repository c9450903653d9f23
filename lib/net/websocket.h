#pragma once
// WebSocket transport (ws:// and wss://) for the gateway and the broker. Beast stays inside
// lib/net/*.cpp; callers see binary messages, a bounded send queue and typed errors.
// Everything runs on the caller's io_context thread: handlers are never called concurrently.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"

namespace aegis::net {

struct Url {
    bool tls = false;          // wss://
    std::string host;          // without brackets for IPv6
    std::string port;          // "80"/"443" when the URL gives none
    std::string target = "/";  // path and query
    std::string server_name;   // host[:port][/path] as bound into the handshake transcript
                               // (PROTOCOL.md §3.1: host lower-cased, IPv6 in RFC 5952 form, the port
                               // only when written, in decimal; the path without query, a lone "/" dropped)
};

// ws://HOST[:PORT][/PATH] or wss://... ; ExitCode::usage with a clear message otherwise.
[[nodiscard]] Result<Url> parse_url(std::string_view text);

struct Limits {
    // One WebSocket message (a record): the largest batch (17 MiB) with its frame and record around it.
    std::size_t max_message_bytes = 17 * 1024 * 1024 + 4096;
    std::size_t max_queued_bytes = 64 * 1024 * 1024;      // unsent bytes per connection before it is closed
    std::chrono::milliseconds handshake_timeout{10'000};  // TCP + TLS + WebSocket upgrade
    std::chrono::milliseconds ping_interval{20'000};      // WebSocket ping when idle
    std::chrono::milliseconds idle_timeout{60'000};       // no pong / no traffic: closed
};

// One WebSocket connection carrying binary messages.
class Connection {
public:
    using MessageHandler = std::function<void(Bytes message)>;
    using CloseHandler = std::function<void(const Error& why)>;

    virtual ~Connection() = default;
    // Starts reading; on_close is called once, when the connection ends for any reason:
    // ExitCode::ok after close(), unreachable (closed by peer, network error, send queue overflow),
    // timeout (no pong within idle_timeout), bad_input (a message over max_message_bytes).
    virtual void start(MessageHandler on_message, CloseHandler on_close) = 0;
    // Queues one binary message. False (and the connection closes) when the queue is over its bound.
    virtual bool send(Bytes message) = 0;
    // Closes gracefully after queued messages are written (bounded by a timeout).
    virtual void close() = 0;
    // Caps the messages read from now on: a handshake needs far less than a session.
    virtual void limit_message_size(std::size_t max_bytes) = 0;
    [[nodiscard]] virtual std::string peer() const = 0;  // "127.0.0.1:40222"
    [[nodiscard]] virtual std::size_t queued_bytes() const = 0;
    [[nodiscard]] virtual std::chrono::microseconds last_rtt() const = 0;  // from ping/pong; 0 before one
};

// One stage of connect() (resolve, tcp, proxy, tls, upgrade) or of the session's handshake as it
// ends, for aegis-connect --check: what it found, or why it failed.
struct ConnectStep {
    std::string name;
    bool ok = true;
    std::chrono::microseconds elapsed{0};
    std::string detail;  // addresses, the TLS certificate and its dates, the key presented, the error
    // The server's clock (the HTTP Date of the upgrade answer; whole seconds), when it sent one.
    std::optional<std::chrono::system_clock::time_point> server_time;
};
using StepObserver = std::function<void(const ConnectStep& step)>;

struct ClientOptions {
    Limits limits;
    std::string proxy;          // http://HOST:PORT for HTTP CONNECT; empty: direct
    std::string tls_ca_file;    // extra CA for wss; empty: the system store
    bool tls_verify = true;     // wss certificate check (Aegis security does not depend on it)
    std::string local_address;  // source address to connect from (an IP literal); empty: the system's choice
    StepObserver on_step;       // told as each stage ends; empty: nothing reported
};

using ConnectHandler = std::function<void(Result<std::shared_ptr<Connection>>)>;

// Resolves, connects (through the proxy if any), does TLS for wss and the WebSocket upgrade.
// Errors: ExitCode::unreachable (connection refused, DNS, proxy), ExitCode::timeout,
// ExitCode::refused (a TLS certificate that does not verify, ws:// against a wss:// port or the
// reverse), ExitCode::bad_input (a CA file that does not load).
void connect(boost::asio::io_context& io, const Url& url, const ClientOptions& options, ConnectHandler handler);

struct ServerOptions {
    std::string listen = "127.0.0.1:8443";  // HOST:PORT; port 0 picks a free one
    std::string tls_cert_file;              // both set: wss
    std::string tls_key_file;
    Limits limits;
    std::size_t max_connections = 20'000;  // beyond it new connections are closed at once
    // A connection ended before it became a WebSocket: "connection_limit" (over max_connections),
    // "upgrade_timeout" (no upgrade within limits.handshake_timeout), "tls_failed" (the TLS
    // handshake failed: the client's alert, or a client that does not speak TLS) or
    // "upgrade_failed" (not an upgrade request, closed midway). `detail` says what happened, for
    // the log; `reason` is one of the fixed words above (a metrics label). Called on the
    // connection's strand.
    std::function<void(std::string_view reason, std::string_view peer, std::string_view detail)> on_refused;
};

class Server {
public:
    using AcceptHandler = std::function<void(std::shared_ptr<Connection>)>;
    virtual ~Server() = default;
    // Binds and starts accepting; each upgraded WebSocket goes to on_accept (not yet started).
    [[nodiscard]] static Result<std::unique_ptr<Server>> listen(boost::asio::io_context& io,
                                                                const ServerOptions& options, AcceptHandler on_accept);
    [[nodiscard]] virtual std::uint16_t port() const = 0;
    [[nodiscard]] virtual std::size_t connections() const = 0;
    // Loads the TLS certificate and key files again: connections accepted afterwards use the new
    // pair, open ones keep theirs. bad_input when they do not load (the pair in use stays);
    // nothing to do without TLS.
    [[nodiscard]] virtual Result<void> reload_tls() = 0;
    virtual void stop() = 0;  // stops accepting; existing connections are the caller's to close
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string allow;  // the Allow header of a 405 answer
};

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string path;    // without the query
    std::string body;
    std::string peer;    // HOST:PORT of the client
    bool local = false;  // the server listens on a loopback address: only local users can reach it
};

// A tiny HTTP/1.1 server for GET /metrics and /healthz (and what else the handler answers).
class AdminServer {
public:
    using Handler = std::function<HttpResponse(std::string_view path)>;  // GET only; other methods: 405
    using RequestHandler = std::function<HttpResponse(const HttpRequest& request)>;
    virtual ~AdminServer() = default;
    [[nodiscard]] static Result<std::unique_ptr<AdminServer>> listen(boost::asio::io_context& io,
                                                                     std::string_view host_port, Handler handler);
    [[nodiscard]] static Result<std::unique_ptr<AdminServer>> listen(boost::asio::io_context& io,
                                                                     std::string_view host_port,
                                                                     RequestHandler handler);
    [[nodiscard]] virtual std::uint16_t port() const = 0;
    virtual void stop() = 0;
};

}  // namespace aegis::net
