#pragma once
// Which HTTP CONNECT proxy the environment asks for, as curl reads it: https_proxy for wss://,
// http_proxy for ws:// (lower case first, then upper case), unless no_proxy lists the host.
// Loopback hosts never go through a proxy.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "net/websocket.h"

namespace aegis::net {

using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
[[nodiscard]] EnvironmentLookup process_environment();

// The proxy URL for `url`, or "" for a direct connection.
[[nodiscard]] std::string proxy_from_environment(const Url& url, const EnvironmentLookup& environment);

}  // namespace aegis::net
