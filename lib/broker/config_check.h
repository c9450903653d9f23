#pragma once
// aegis-connect --check-config (like sshd -t): what a start reads, read without listening,
// connecting or writing, so a file can be checked while the broker runs, before a restart.

#include <string>
#include <vector>

#include "broker/launch.h"

namespace aegis::broker {

// The URL, the identity, the pinned gateway key, the CA file, the proxy, the socket group and the
// state directory (when it exists): every problem found, one line each; empty when none.
[[nodiscard]] std::vector<std::string> check_broker_config(const ConnectOptions& options);

}  // namespace aegis::broker
