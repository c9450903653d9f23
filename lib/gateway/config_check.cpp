#include "gateway/config_check.h"

#include <fmt/format.h>

#include <system_error>

#include "gateway/applied_files.h"
#include "gateway/authorized_keys.h"
#include "gateway/channel_controls.h"
#include "gateway/revocation_list.h"
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

std::vector<std::string> check_gateway_config(const GatewayOptions& options, std::vector<std::string>& warnings,
                                              std::optional<std::vector<std::string>>& changes) {
    std::vector<std::string> problems;
    check_address("--listen", options.listen, problems);
    if (!options.admin.empty()) check_address("--admin", options.admin, problems);

    if (options.identity_file.empty()) {
        problems.emplace_back("--identity KEY is required");
    } else if (auto identity = identity::load_secret_key(options.identity_file); !identity) {
        problems.push_back(identity.error().message);
    }

    AppliedFiles next;
    bool readable = true;  // the authorized file and the revocation list, for the changes
    if (options.authorized_file.empty()) {
        problems.emplace_back("--authorized FILE is required");
        readable = false;
    } else if (auto keys = load_authorized_keys(options.authorized_file); !keys) {
        problems.push_back(keys.error().message);
        readable = false;
    } else {
        warnings = keys->warnings;
        next.keys = std::move(keys.value());
    }
    if (!options.revoked_file.empty()) {
        if (auto revoked = load_revocation_list(options.revoked_file); !revoked) {
            problems.push_back(revoked.error().message);
            readable = false;
        } else {
            next.revoked = std::move(revoked.value());
        }
    }
    // Missing is fine (nothing disabled), as at start; a file that is there must parse.
    const auto controls =
        options.channel_controls_file.empty() ? options.state_dir / "channel-controls" : options.channel_controls_file;
    std::error_code missing;
    if (!controls.empty() && std::filesystem::exists(controls, missing)) {
        if (auto read = load_channel_controls(controls); !read) problems.push_back(read.error().message);
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
        if (auto usable = store::prepare_state_directory(options.state_dir); !usable) {
            problems.push_back(usable.error().message);
        } else if (auto applied = read_applied(options.state_dir); !applied) {
            problems.push_back(applied.error().message);
        } else if (applied->has_value() && readable) {
            changes = describe_changes(**applied, next);
        }
    }
    return problems;
}

}  // namespace aegis::gateway
