#pragma once
// The backend hub (man aegis-gateway(1)): accepts secure sessions, authenticates identities
// against the authorized-keys file, enforces channel access and routes signed batches.
// Runs on the caller's io_context; logs through a sink, one line per event, never a secret.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/metrics.h"
#include "protocol/envelope.h"

namespace aegis::gateway {

struct GatewayOptions {
    std::string listen = "127.0.0.1:8443";  // HOST:PORT; port 0 picks a free one
    std::filesystem::path identity_file;    // the gateway's secret key
    std::filesystem::path authorized_file;
    std::filesystem::path revoked_file;  // keys and certificate serials refused; empty: none
    std::filesystem::path state_dir;     // created 0700 when missing; refused when not private
    std::string redis;  // redis://HOST:PORT[/DB]: the state in Redis, shared by a cluster; empty: STATE_DIR/gateway.db
    std::uint64_t redis_wait_replicas = 0;  // a publish is acknowledged once WAIT says this many replicas have it
    std::uint64_t redis_wait_timeout_ms = 500;
    std::string redis_sentinel;  // HOST:PORT[,HOST:PORT...]: the Redis is the master these sentinels name
    std::string redis_master;    // ... under this name (with redis_sentinel)
    std::uint64_t redis_db = 0;  // with redis_sentinel: the database (--redis gives it in its URL)

    std::string admin;                            // HOST:PORT for /metrics and /healthz; empty: none
    std::filesystem::path channel_controls_file;  // disabled channel patterns; empty: STATE_DIR/channel-controls
    std::string tls_cert_file;                    // both set: wss://
    std::string tls_key_file;
    std::size_t max_sessions = 10'000;
    std::size_t max_message_bytes = protocol::kMaxBatchBytes;  // one published batch
    bool verify_signatures = false;  // verify each published batch's origin signature too (receivers always do)
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds clock_skew{120'000};
    std::uint64_t inbox_max_messages = 100'000;           // per identity
    std::chrono::seconds inbox_max_age{7 * 24 * 3600};    // stored messages and session tokens
    std::size_t replay_window = 64;                       // deliver frames in flight per session
    std::uint32_t replay_rate = 0;                        // deliver frames per second per session; 0: no limit
    std::chrono::milliseconds drop_log_interval{60'000};  // "inbox full" lines: at most one per identity per interval
};

// One line, without a timestamp or newline (the tool adds those).
using LogSink = std::function<void(std::string_view line)>;

class Gateway {
public:
    // Checks the options, loads the identity and authorized files, prepares the state
    // directory and starts listening. ExitCode::usage for bad options, bad_input for an
    // unreadable file or directory, failure when a port cannot be bound.
    [[nodiscard]] static Result<std::unique_ptr<Gateway>> start(boost::asio::io_context& io,
                                                                const GatewayOptions& options, LogSink log);
    // The same with the identity given in memory (options.identity_file is ignored), and the
    // certificate of it (PROTOCOL.md §2.1) sent to brokers that ask; empty: none.
    [[nodiscard]] static Result<std::unique_ptr<Gateway>> start(boost::asio::io_context& io,
                                                                const GatewayOptions& options,
                                                                crypto::SigningKey identity, LogSink log,
                                                                Bytes certificate = {});
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // SIGHUP: re-reads the authorized file and the channel controls (both or neither); sessions of identities removed,
    // or whose id or role changed, get goodbye(revoked) and are closed. On error the previous set stays in force.
    // With a shared store (--redis), the other gateways are asked to reload theirs too.
    Result<void> reload();
    // SIGTERM: goodbye(shutting_down) to every session, close them, stop listening.
    void shutdown();

    [[nodiscard]] std::uint16_t port() const;
    [[nodiscard]] std::uint16_t admin_port() const;  // 0 without --admin
    [[nodiscard]] const crypto::PublicKey& public_key() const;
    [[nodiscard]] const GatewayMetrics& metrics() const;

    struct Core;

private:
    explicit Gateway(std::shared_ptr<Core> core);
    std::shared_ptr<Core> core_;
};

// The whole process: start, then serve until SIGTERM/SIGINT (graceful shutdown), re-reading
// the authorized file on SIGHUP. Returns once every session is closed.
[[nodiscard]] Result<void> run_gateway(const GatewayOptions& options, LogSink log);

}  // namespace aegis::gateway
