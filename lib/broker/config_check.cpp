#include "broker/config_check.h"

#include <fmt/format.h>

#include <fstream>
#include <system_error>

#include "ipc/socket_path.h"
#include "net/address.h"
#include "net/websocket.h"
#include "store/private_files.h"

namespace aegis::broker {

std::vector<std::string> check_broker_config(const ConnectOptions& options) {
    std::vector<std::string> problems;
    if (options.url.empty()) {
        problems.emplace_back("a gateway URL is required ('url = ws://HOST:PORT/' in the file)");
    } else if (auto url = net::parse_url(options.url); !url) {
        problems.push_back(url.error().message);
    } else if (!options.ca_file.empty() && !url->tls) {
        problems.push_back(fmt::format("--ca-file is for wss:// URLs; {} is ws://", options.url));
    }
    for (const auto& text : options.more_urls) {
        if (auto url = net::parse_url(text); !url) problems.push_back(url.error().message);
    }
    if (options.backend_keys.empty() && !options.accept_new && options.backend_ca.empty()) {
        problems.emplace_back("--backend-key, --backend-ca or --accept-new is required");
    } else if (!options.backend_ca.empty() && (!options.backend_keys.empty() || options.accept_new)) {
        problems.emplace_back("--backend-ca cannot be combined with --backend-key or --accept-new");
    }
    for (const auto& text : options.backend_keys) {
        if (auto key = identity::resolve_public_key(text); !key)
            problems.push_back(fmt::format("--backend-key: {}", key.error().message));
    }
    if (!options.backend_ca.empty()) {
        if (auto cas = load_gateway_cas(options.backend_ca); !cas) problems.push_back(cas.error().message);
    }
    if (auto identity = identity::load_secret_key(options.identity.value_or(identity::default_key_path())); !identity)
        problems.push_back(identity.error().message);
    if (!options.ca_file.empty() && !std::ifstream(options.ca_file))
        problems.push_back(fmt::format("--ca-file: cannot read {}", options.ca_file));
    if (!options.proxy.empty()) {
        if (auto proxy = net::parse_proxy_url(options.proxy); !proxy)
            problems.push_back(fmt::format("--proxy: {}", proxy.error().message));
    }
    if (!options.socket_group.empty()) {
        if (auto group = ipc::lookup_group(options.socket_group); !group) problems.push_back(group.error().message);
    }
    if (options.backoff_max_s < options.backoff_min_s)
        problems.emplace_back("--backoff-max must not be below --backoff-min");
    // A missing state directory is made at start; one that is there must already be usable.
    const auto state_dir = options.state_dir.empty() ? default_state_dir() : std::filesystem::path(options.state_dir);
    std::error_code ignored;
    if (std::filesystem::exists(state_dir, ignored)) {
        if (auto usable = store::prepare_state_directory(state_dir); !usable)
            problems.push_back(usable.error().message);
    }
    return problems;
}

}  // namespace aegis::broker
