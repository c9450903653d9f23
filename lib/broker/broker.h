#pragma once
// The broker (aegis-connect's process): one ClientSession to the gateway, the local socket for
// the tools, the outbound queue, and the fan-out of delivered messages to local subscribers.
// Runs on the caller's io_context; everything happens on that thread.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "session/client_session.h"
#include "store/durable_inbox.h"
#include "store/outbound_store.h"

namespace aegis::broker {

using LogSink = std::function<void(std::string_view line)>;

struct BrokerConfig {
    // The session's options; `identity` must outlive the broker.
    session::ClientSessionOptions session;
    std::string url_text;          // the gateway URL as shown in logs and status
    std::filesystem::path socket;  // directory prepared and path claimed beforehand
    // Trust on first use: record an unpinned gateway key here (nullopt: the key is pinned).
    std::optional<std::filesystem::path> known_backends;
    // The pinned key came from this known_backends file (--accept-new): a mismatch names it.
    std::optional<std::filesystem::path> pinned_by_known_backends;
    std::chrono::milliseconds ready_timeout{30'000};
    bool ready_when_listening = false;  // --no-wait: ready once the socket is up
    // The state file (outbound queue, delivered ids, durable inboxes); opened by start().
    std::filesystem::path state_file;
    store::QueueLimits queue_limits;
    // A durable subscription's inbox bound; past it the oldest are dropped (and logged).
    store::InboxLimits inbox_limits;
    // Retryable refusals of a message by the gateway before it becomes a dead letter; 0: never.
    std::uint32_t max_attempts = 0;
    // The batch format it signs (PROTOCOL.md 5): 1, or 2 once every receiver reads it.
    std::uint8_t batch_format = protocol::kBatchFormatWhole;
    // SIGHUP: reopens the log file (detached); empty when logging to stderr.
    std::function<Result<void>()> reopen_log;
    // --socket-group: the socket 0660 and its directory 0750 for this group, whose members the
    // peer check admits besides the broker's own uid and root.
    std::optional<gid_t> socket_group;
    // One line on the session's state as it changes ("connected to ...", "backing off: ...").
    std::function<void(std::string_view status)> on_status;
};

// Opens the state file as start() will, and closes it again: a foreign, corrupt or unwritable
// file fails here (ExitCode::bad_input / failure) before the broker detaches.
[[nodiscard]] Result<void> check_state_file(const std::filesystem::path& file);

struct Ready {
    std::string summary;  // "connected to ws://... as host42 (agent); backend SHA256:..."
};

using ReadyHandler = std::function<void(const Result<Ready>& outcome)>;

class Broker {
public:
    Broker(boost::asio::io_context& io, BrokerConfig config, LogSink log);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Listens on the socket and starts the session. `on_ready` is called exactly once: when the
    // first handshake succeeds (or the socket is up, for ready_when_listening), or with the
    // reason it cannot: a refusal (ExitCode::refused), no connection within ready_timeout
    // (ExitCode::timeout; the broker then stops). SIGINT and SIGTERM stop the broker gracefully;
    // SIGHUP reopens the log file (BrokerConfig::reopen_log) and never stops it.
    [[nodiscard]] Result<void> start(ReadyHandler on_ready);
    // Graceful stop; the io_context runs out of work shortly after.
    void stop();
    // The reason start-up failed, once on_ready reported a failure.
    [[nodiscard]] const std::optional<Error>& startup_failure() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// Runs a broker on a fresh io_context until it stops: the failure that stopped it during
// start-up, or success after a requested stop.
[[nodiscard]] Result<void> run_broker(BrokerConfig config, LogSink log, ReadyHandler on_ready);

}  // namespace aegis::broker
