#pragma once
// The attacks, one entry point each (see main.cpp for the command line). Each returns the
// process exit status: 0 when every check held (the attack was refused as it must be), 1 when
// one did not, 2 when the attack could not even be set up.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "crypto/primitives.h"
#include "wire.h"

namespace aegis::attack {

struct Options {
    std::uint16_t port = 0;                            // the gateway's WebSocket port on 127.0.0.1
    std::optional<crypto::SigningKey> identity;        // an authorized agent identity
    std::optional<crypto::SigningKey> other_identity;  // another identity's key (ACL, hostile origin)
    crypto::PublicKey gateway_key{};                   // pinned
    std::string agent_id;                              // the id the gateway assigns `identity`
    std::string other_id;                              // the id of `other_identity`
    int gateway_pid = 0;                               // for VmRSS; 0: not measured
    std::size_t connections = 0;
    std::size_t tcp_connections = 0;
    std::size_t hello_connections = 0;  // of `connections`: those that send a ClientHello first
    std::size_t bytes = 0;
    std::size_t max_message_bytes = 0;  // the gateway's --max-message-bytes
    std::size_t max_connections = 0;    // what the gateway may hold at once
    std::size_t max_rss_growth_mib = 0;
    Ms handshake_timeout{0};           // the gateway's --handshake-timeout
    Ms timeout{20'000};                // bound on the whole attack
    std::filesystem::path ready_file;  // touched once the attack is in place
    std::filesystem::path port_file;   // hostile gateway: where it writes its port
    std::string listen = "127.0.0.1:0";
    bool gateway_verifies = false;  // forged publish: the gateway runs with --verify-signatures
};

[[nodiscard]] int handshake_replay(const Options& options);
[[nodiscard]] int record_tampering(const Options& options);
[[nodiscard]] int oversize_handshake(const Options& options);
[[nodiscard]] int oversize_session(const Options& options);
[[nodiscard]] int hanging_handshakes(const Options& options);
[[nodiscard]] int connection_flood(const Options& options);
[[nodiscard]] int channel_access(const Options& options);
[[nodiscard]] int hostile_gateway(const Options& options);
[[nodiscard]] int forged_publish(const Options& options);

// Resident memory of a process in KiB (VmRSS of /proc/PID/status); 0 when unknown.
[[nodiscard]] std::uint64_t resident_kib(int pid);
// Creates `path` (empty) so a driving script knows the attack is in place.
void touch(const std::filesystem::path& path);

}  // namespace aegis::attack
