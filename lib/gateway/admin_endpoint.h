#pragma once
// The gateway's admin endpoint (man aegis-gateway(1) ADMIN ENDPOINT): GET /metrics, /healthz,
// /readyz, /sessions and the channel controls (/channels). It owns the HTTP routes only; what
// each page shows is asked of the gateway through AdminView at each request.

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "net/websocket.h"

namespace aegis::gateway {

class AdminView {
public:
    virtual ~AdminView() = default;
    // Why a load balancer should send new brokers elsewhere now; nullopt: ready.
    [[nodiscard]] virtual std::optional<std::string> not_ready() = 0;
    // The fleet view (gateway/fleet_view.h).
    [[nodiscard]] virtual std::string sessions_json() = 0;
    // The metrics in Prometheus text (gateway/metrics.h).
    [[nodiscard]] virtual std::string prometheus_text() = 0;
    // The channel controls' routes (gateway/channel_admin.h); nullopt for other requests.
    [[nodiscard]] virtual std::optional<net::HttpResponse> channels(const net::HttpRequest& request) = 0;
};

class AdminEndpoint {
public:
    // Binds HOST:PORT; the error names the address ("admin endpoint: ...").
    [[nodiscard]] static Result<std::unique_ptr<AdminEndpoint>> listen(boost::asio::io_context& io,
                                                                       std::string_view host_port,
                                                                       std::weak_ptr<AdminView> view);
    // The answer to one request, without a socket (a view that is gone answers 503).
    [[nodiscard]] static net::HttpResponse answer(AdminView& view, const net::HttpRequest& request);

    [[nodiscard]] std::uint16_t port() const { return server_->port(); }
    void stop() { server_->stop(); }

private:
    explicit AdminEndpoint(std::unique_ptr<net::AdminServer> server) : server_(std::move(server)) {}
    std::unique_ptr<net::AdminServer> server_;
};

}  // namespace aegis::gateway
