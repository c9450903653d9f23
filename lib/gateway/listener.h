#pragma once
// The gateway's listening socket: TCP, TLS when configured, the WebSocket upgrade and the plain
// HTTP answers before it (net/websocket.h). Each upgraded connection is handed to admission
// through one callback; a connection the transport ended before its upgrade is counted and
// logged here, a flood over the connection limit at most once a second.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/metrics.h"
#include "net/websocket.h"

namespace aegis::gateway {

struct ListenerOptions {
    std::string listen;         // HOST:PORT; port 0 picks a free one
    std::string tls_cert_file;  // both set: wss://
    std::string tls_key_file;
    std::size_t max_message_bytes = 0;                    // one WebSocket message once the handshake is done
    std::size_t max_connections = 0;                      // beyond it new connections are closed at once
    std::chrono::milliseconds handshake_timeout{10'000};  // for the WebSocket upgrade
};

class Listener : public std::enable_shared_from_this<Listener> {
public:
    using Accepted = std::function<void(std::shared_ptr<net::Connection>)>;
    using Log = std::function<void(std::string_view line)>;

    // Binds and starts accepting. Each error names its address or file and carries its own exit
    // code (usage, bad input, failure). `counters` must outlive the listener.
    [[nodiscard]] static Result<std::shared_ptr<Listener>> open(boost::asio::io_context& io,
                                                                const ListenerOptions& options,
                                                                GatewayMetrics& counters, Log log, Accepted accepted);

    [[nodiscard]] std::uint16_t port() const { return server_->port(); }
    [[nodiscard]] std::size_t connections() const { return server_->connections(); }
    // SIGHUP: the TLS pair again, for connections accepted from now on (nothing to do without TLS).
    [[nodiscard]] Result<void> reload_tls() { return server_->reload_tls(); }
    void stop() { server_->stop(); }

    Listener(ListenerOptions options, GatewayMetrics& counters, Log log);

private:
    void on_refused(std::string_view reason, std::string_view peer, std::string_view detail);

    ListenerOptions options_;
    GatewayMetrics& counters_;
    Log log_;
    std::unique_ptr<net::Server> server_;
    std::chrono::steady_clock::time_point last_limit_line_{};
    std::uint64_t unlogged_limit_refusals_ = 0;
};

}  // namespace aegis::gateway
