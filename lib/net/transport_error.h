#pragma once
// Turning Asio/Beast error codes into typed Errors (internal to lib/net).

#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::net {

// A short cause in plain words: "connection refused", "TLS certificate verify failed", ...
[[nodiscard]] std::string describe(const boost::system::error_code& ec);

[[nodiscard]] bool is_timeout(const boost::system::error_code& ec);

// A failure while connecting to `authority` (host:port): ExitCode::timeout or ExitCode::unreachable.
[[nodiscard]] Error connect_error(std::string_view authority, const boost::system::error_code& ec);

// The end of an established connection to `peer` (closed by peer, timeout, too large, network error).
[[nodiscard]] Error connection_error(std::string_view peer, const boost::system::error_code& ec,
                                     std::string_view close_reason, std::size_t max_message_bytes);

}  // namespace aegis::net
