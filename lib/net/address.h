#pragma once
// Host and port text shared by URLs, listen addresses and proxy settings (internal to lib/net).

#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::net {

struct HostPort {
    std::string host;  // without brackets for IPv6
    std::string port;  // decimal, normalised
};

// HOST:PORT or [IPV6]:PORT; port 0 is allowed (pick a free one). ExitCode::usage otherwise.
[[nodiscard]] Result<HostPort> parse_listen_address(std::string_view text);

// http://HOST[:PORT][/] for an HTTP CONNECT proxy (port 80 when absent). ExitCode::usage otherwise.
[[nodiscard]] Result<HostPort> parse_proxy_url(std::string_view text);

// "host:port", with brackets around an IPv6 host.
[[nodiscard]] std::string format_authority(std::string_view host, std::string_view port);

}  // namespace aegis::net
