#pragma once
// One plain HTTP GET, for the tools that read a gateway's admin endpoint (aegis-stat --fleet).

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::net {

struct HttpAddress {
    std::string host;  // without brackets for IPv6
    std::string port;
};

// http://HOST:PORT[/] or HOST:PORT (the admin endpoint has no path of its own); ExitCode::usage
// naming what is wrong otherwise (https:// is not served there).
[[nodiscard]] Result<HttpAddress> parse_admin_address(std::string_view text);

struct HttpReply {
    int status = 0;
    std::string body;
};

// GET TARGET from ADDRESS within TIMEOUT. ExitCode::no_broker is not used here: a name that does
// not resolve, a refused connection or a reset is ExitCode::failure; running out of time is
// ExitCode::timeout. Any status is a reply.
[[nodiscard]] Result<HttpReply> http_get(const HttpAddress& address, std::string_view target,
                                         std::chrono::milliseconds timeout);

}  // namespace aegis::net
