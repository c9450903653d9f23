#pragma once
// aegis-gateway --check-config (like sshd -t): everything a start reads, read without listening
// or writing, so a file can be checked before the service is reloaded or restarted.

#include <string>
#include <vector>

#include "gateway/gateway.h"

namespace aegis::gateway {

// The identity, the authorized file, the TLS pair, the state directory (when it exists) and the
// addresses: every problem found, one line each; empty when a start would get past them all.
// `warnings` gets what the authorized file warns about (a start logs the same).
[[nodiscard]] std::vector<std::string> check_gateway_config(const GatewayOptions& options,
                                                            std::vector<std::string>& warnings);

}  // namespace aegis::gateway
