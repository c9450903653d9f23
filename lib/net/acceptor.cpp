// Binding a listening socket from HOST:PORT text.

#include "net/acceptor.h"

#include "net/address.h"
#include "net/transport_error.h"

namespace aegis::net {

using tcp = boost::asio::ip::tcp;

Result<tcp::acceptor> open_acceptor(const boost::asio::any_io_executor& executor, std::string_view host_port) {
    auto address = parse_listen_address(host_port);
    if (!address) return address.take_error();
    boost::system::error_code ec;
    tcp::resolver resolver(executor);
    // A name (localhost) is resolved once, at startup; blocking here is fine.
    const auto endpoints = resolver.resolve(address->host, address->port, tcp::resolver::passive, ec);
    if (ec || endpoints.empty())
        return make_error(ExitCode::usage, "cannot listen on {}: {}", host_port, ec ? describe(ec) : "no address");
    const tcp::endpoint endpoint = *endpoints.begin();

    tcp::acceptor acceptor(executor);
    auto failed = [&](std::string_view step) {
        return make_error(ExitCode::failure, "cannot listen on {}: {}: {}", host_port, step, describe(ec));
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return failed("open");
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ec) return failed("reuse_address");
    acceptor.bind(endpoint, ec);
    if (ec) return failed("bind");
    acceptor.listen(tcp::acceptor::max_listen_connections, ec);
    if (ec) return failed("listen");
    return acceptor;
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
    return format_authority(endpoint.address().to_string(), std::to_string(endpoint.port()));
}

}  // namespace aegis::net
