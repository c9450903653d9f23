#pragma once
// aegis-connect's start-up, between its command line and a running broker: every check that
// can fail before the broker runs (options, key files, the pinned gateway key, directories,
// the socket path) happens here, so it fails in the foreground with the right exit code.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/result.h"
#include "identity/keyfile.h"

namespace aegis::broker {

struct ConnectOptions {
    std::string url;
    // Further gateways of the same cluster (aegis-connect URL URL...): tried in a random order.
    std::vector<std::string> more_urls;
    std::optional<std::filesystem::path> identity;  // default: identity::default_key_path()
    // --backend-key, repeatable: key file paths, "aegis-ed25519 ..." lines or base64; any one is accepted.
    std::vector<std::string> backend_keys;
    bool accept_new = false;
    std::string backend_ca;    // file of operator CA public keys whose gateway certificates are trusted
    std::string socket;        // empty: $AEGIS_SOCKET or the default
    std::string socket_group;  // --socket-group: a group name or number; empty: the owner only
    std::string state_dir;     // empty: default_state_dir()
    std::string log_file;      // empty: STATE_DIR/broker.log (when detached)
    std::string proxy;
    std::string ca_file;  // a PEM CA trusted for wss:// besides the system's (SSL_CERT_FILE, SSL_CERT_DIR)
    double backoff_min_s = 5;
    double backoff_max_s = 60;
    double heartbeat_s = 30;
    double timeout_s = 30;
    bool no_wait = false;
    std::uint64_t queue_max_messages = 1'000'000;
    std::uint64_t queue_max_bytes = 1024ull * 1024 * 1024;
    std::uint64_t cursor_max_messages = 100'000;  // a durable subscription's inbox bound
    std::uint64_t max_attempts = 0;               // retryable refusals before a message is a dead letter; 0: never
    std::uint64_t batch_format = 1;               // --batch-format: what the broker signs (PROTOCOL.md 5)
};

struct PreparedBroker {
    identity::Identity identity;  // BrokerConfig::session.identity points here
    BrokerConfig config;
    std::filesystem::path state_dir;
    std::filesystem::path log_file;
};

// $XDG_STATE_HOME/aegis, else ~/.local/state/aegis.
[[nodiscard]] std::filesystem::path default_state_dir();

// The CA keys of a --backend-ca file: one "aegis-ed25519 <base64> [comment]" line each; '#'
// comments and blank lines allowed. Any bad line fails (exit 6, FILE:LINE).
[[nodiscard]] Result<std::vector<crypto::PublicKey>> load_gateway_cas(const std::filesystem::path& file);

// Usage errors exit 2 (bad URL, bad numbers, neither --backend-key nor --accept-new), key files
// and a corrupt or foreign STATE_DIR/queue.db exit 6, an unwritable state directory and a
// broker already on the socket exit 1. Allocated so the identity never moves.
[[nodiscard]] Result<std::unique_ptr<PreparedBroker>> prepare_broker(const ConnectOptions& options);

}  // namespace aegis::broker
