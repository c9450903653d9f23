#include "gateway/listener.h"

#include <fmt/format.h>

namespace aegis::gateway {

Listener::Listener(ListenerOptions options, GatewayMetrics& counters, Log log)
    : options_(std::move(options)), counters_(counters), log_(std::move(log)) {}

Result<std::shared_ptr<Listener>> Listener::open(boost::asio::io_context& io, const ListenerOptions& options,
                                                 GatewayMetrics& counters, Log log, Accepted accepted) {
    auto listener = std::make_shared<Listener>(options, counters, std::move(log));
    net::ServerOptions server_options;
    server_options.listen = options.listen;
    server_options.tls_cert_file = options.tls_cert_file;
    server_options.tls_key_file = options.tls_key_file;
    server_options.limits.max_message_bytes = options.max_message_bytes;
    server_options.max_connections = options.max_connections;
    server_options.limits.handshake_timeout = options.handshake_timeout;
    server_options.on_refused = [weak = std::weak_ptr<Listener>(listener)](
                                    std::string_view reason, std::string_view peer, std::string_view detail) {
        if (auto self = weak.lock()) self->on_refused(reason, peer, detail);
    };
    auto server = net::Server::listen(io, server_options, std::move(accepted));
    if (!server) return server.take_error();
    listener->server_ = std::move(server.value());
    return listener;
}

void Listener::on_refused(std::string_view reason, std::string_view peer, std::string_view detail) {
    counters_.count_transport_refusal(reason);
    if (!log_) return;
    if (reason == "connection_limit") {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_limit_line_ < std::chrono::seconds(1)) {
            ++unlogged_limit_refusals_;
            return;
        }
        last_limit_line_ = now;
        log_(fmt::format("refused peer={} reason=connection_limit: {} connections open (limit {}){}", peer,
                         server_ ? server_->connections() : 0, options_.max_connections,
                         unlogged_limit_refusals_ == 0
                             ? std::string()
                             : fmt::format(", {} more refused since the last line", unlogged_limit_refusals_)));
        unlogged_limit_refusals_ = 0;
        return;
    }
    if (reason == "upgrade_timeout") {
        log_(fmt::format("refused peer={} reason=upgrade_timeout: no WebSocket upgrade within {} ms", peer,
                         options_.handshake_timeout.count()));
        return;
    }
    log_(fmt::format("refused peer={} reason={}: {}", peer, reason,
                     detail.empty() ? "closed before the upgrade" : detail));
}

}  // namespace aegis::gateway
