#pragma once
// aegis-gateway --check-config (like sshd -t): everything a start reads, read without listening
// or writing, so a file can be checked before the service is reloaded or restarted.

#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway.h"

namespace aegis::gateway {

// The identity, the authorized file, the TLS pair, the state directory (when it exists) and the
// addresses: every problem found, one line each; empty when a start would get past them all.
// `warnings` gets what the authorized file warns about (a start logs the same). When the state
// directory holds what a gateway applied (gateway/applied_files.h), `changes` gets what a reload
// with these files would change (applied_files.h describe_changes), else stays nullopt.
[[nodiscard]] std::vector<std::string> check_gateway_config(const GatewayOptions& options,
                                                            std::vector<std::string>& warnings,
                                                            std::optional<std::vector<std::string>>& changes);

}  // namespace aegis::gateway
