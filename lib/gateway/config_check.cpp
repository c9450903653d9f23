#include "gateway/config_check.h"

#include <fmt/format.h>

#include <system_error>

#include "gateway/authorized_keys.h"
#include "identity/keyfile.h"
#include "net/server_tls.h"
#include "store/private_files.h"

namespace aegis::gateway {

namespace {

void check_address(std::string_view option, const std::string& address, std::vector<std::string>& problems) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 == address.size())
        problems.push_back(fmt::format("{} wants HOST:PORT, not '{}'", option, address));
}

}  // namespace

std::vector<std::string> check_gateway_config(const GatewayOptions& options, std::vector<std::string>& warnings) {
    std::vector<std::string> problems;
    check_address("--listen", options.listen, problems);
    if (!options.admin.empty()) check_address("--admin", options.admin, problems);

    if (options.identity_file.empty()) {
        problems.emplace_back("--identity KEY is required");
    } else if (auto identity = identity::load_secret_key(options.identity_file); !identity) {
        problems.push_back(identity.error().message);
    }

    if (options.authorized_file.empty()) {
        problems.emplace_back("--authorized FILE is required");
    } else if (auto keys = load_authorized_keys(options.authorized_file); !keys) {
        problems.push_back(keys.error().message);
    } else {
        warnings = keys->warnings;
    }

    net::ServerOptions tls;
    tls.tls_cert_file = options.tls_cert_file;
    tls.tls_key_file = options.tls_key_file;
    if (auto loaded = net::check_server_tls(tls); !loaded) problems.push_back(loaded.error().message);

    // A missing state directory is made at start; one that is there must already be usable.
    std::error_code ignored;
    if (options.state_dir.empty()) {
        problems.emplace_back("--state-dir DIR is required");
    } else if (std::filesystem::exists(options.state_dir, ignored)) {
        if (auto usable = store::prepare_state_directory(options.state_dir); !usable)
            problems.push_back(usable.error().message);
    }
    return problems;
}

}  // namespace aegis::gateway
