#pragma once
// Checking the gateway's TLS files without listening (aegis-gateway --check-config).

#include "core/result.h"
#include "net/websocket.h"

namespace aegis::net {

// Loads the TLS certificate and key files as Server::listen would, and lets them go: bad_input
// when they do not load, usage when only one is given. Nothing to do without TLS.
[[nodiscard]] Result<void> check_server_tls(const ServerOptions& options);

}  // namespace aegis::net
