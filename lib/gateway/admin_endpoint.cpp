#include "gateway/admin_endpoint.h"

#include <fmt/format.h>

namespace aegis::gateway {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";

}  // namespace

Result<std::unique_ptr<AdminEndpoint>> AdminEndpoint::listen(boost::asio::io_context& io, std::string_view host_port,
                                                             std::weak_ptr<AdminView> view) {
    auto server = net::AdminServer::listen(io, host_port, [view = std::move(view)](const net::HttpRequest& request) {
        if (auto shown = view.lock()) return answer(*shown, request);
        return net::HttpResponse{503, kText, "stopping\n", {}};
    });
    if (!server) {
        auto error = server.take_error();
        error.message = fmt::format("admin endpoint: {}", error.message);
        return error;
    }
    return std::unique_ptr<AdminEndpoint>(new AdminEndpoint(std::move(server.value())));
}

net::HttpResponse AdminEndpoint::answer(AdminView& view, const net::HttpRequest& request) {
    if (auto answered = view.channels(request)) return std::move(*answered);
    if (request.method != "GET") return net::HttpResponse{405, kText, "only GET is supported here\n", "GET"};
    const std::string_view path = request.path;
    if (path == "/healthz") return net::HttpResponse{200, kText, "ok\n"};
    if (path == "/readyz") {
        // 503 with the reason, so a load balancer sends new brokers elsewhere.
        if (auto why = view.not_ready()) return net::HttpResponse{503, kText, "not ready: " + *why + "\n"};
        return net::HttpResponse{200, kText, "ready\n"};
    }
    if (path == "/sessions") return net::HttpResponse{200, "application/json", view.sessions_json()};
    if (path == "/metrics")
        return net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", view.prometheus_text()};
    return net::HttpResponse{404, kText, "not found\n"};
}

}  // namespace aegis::gateway
