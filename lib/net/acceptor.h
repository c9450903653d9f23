#pragma once
// A bound, listening TCP acceptor for HOST:PORT (internal to lib/net).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::net {

// ExitCode::usage for a malformed address, ExitCode::failure when it cannot be bound.
[[nodiscard]] Result<boost::asio::ip::tcp::acceptor> open_acceptor(const boost::asio::any_io_executor& executor,
                                                                   std::string_view host_port);

// "127.0.0.1:40222" or "[::1]:40222".
[[nodiscard]] std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace aegis::net
