#pragma once
// aegis-sub's loop, the twin of PublishPipeline: read events, filter, print or run the
// command, reply to requests and acknowledge durable positions once a message is fully
// handled. The connection is subscribed already.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/ack_tracker.h"
#include "cli/exec_command.h"
#include "cli/message_format.h"
#include "cli/unconfirmed_writes.h"
#include "ipc/client.h"

namespace aegis::cli {

// What the loop does with the messages (aegis-sub's options).
struct ReceiveOptions {
    std::optional<std::uint64_t> count;             // stop after this many
    std::optional<std::chrono::milliseconds> wait;  // stop after this long
    OutputStyle style;
    std::string from;     // keep only messages signed by this fingerprint
    std::string durable;  // cursor name; empty: a plain subscription
    bool drain = false;   // durable: stop once the stored backlog is handled
    std::string exec;     // a command per message; its output answers requests
    std::uint64_t jobs = 1;
    std::chrono::milliseconds exec_timeout{30'000};  // 0: none
};

class Receiver {
public:
    // Errors are reported as "<tool>: error: ..."; messages are written to `out`.
    Receiver(ipc::Client& client, const ReceiveOptions& options, std::string_view tool, std::FILE* out = stdout);
    // Runs until done; the exit code (errors are reported on stderr).
    [[nodiscard]] int run();
    // Ends the running --exec commands' process groups and waits for them (any thread).
    void stop_commands();

private:
    enum class Step { go_on, stop };
    [[nodiscard]] Result<Step> on_message(ipc::DeliveredMessage message, std::uint64_t cursor_seq);
    [[nodiscard]] Result<Step> on_finished(CommandPool::Finished finished);
    [[nodiscard]] Result<Step> collect_finished(std::chrono::milliseconds wait);
    [[nodiscard]] Result<void> handled(std::uint64_t cursor_seq);
    // Takes the broker's answers to acks in flight until at most `at_most` wait (without
    // blocking for the ones within that bound).
    [[nodiscard]] Result<void> confirm_acks(std::size_t at_most);
    void written(std::uint64_t cursor_seq, const protocol::MessageId& id);
    // Reports the error once, after naming what may be delivered again.
    [[nodiscard]] int fail(const Error& error);
    void warn_unconfirmed();
    // A normal exit: waits for the answers to the acks in flight; 0, or the error's exit code.
    [[nodiscard]] int finish();
    [[nodiscard]] bool done() const;
    [[nodiscard]] int timed_out() const;
    // Writes and flushes; false once the output is closed (a pipeline reader went away).
    [[nodiscard]] bool write_out(std::string_view text);
    // Writes without flushing (run() flushes before it waits for the broker); false as above.
    [[nodiscard]] bool write_held(std::string_view text);

    ipc::Client& client_;
    const ReceiveOptions& options_;
    std::string tool_;
    std::FILE* out_;
    std::unique_ptr<CommandPool> pool_;
    AckTracker acks_;
    UnconfirmedWrites unconfirmed_;
    struct AckInFlight {
        std::uint64_t request = 0;
        std::uint64_t position = 0;
    };
    std::deque<AckInFlight> acks_in_flight_;            // oldest first; the broker answers in order
    std::map<std::string, std::uint64_t> running_seq_;  // message id -> cursor position
    std::uint64_t received_ = 0;
    bool caught_up_ = false;
    bool hold_output_ = false;  // messages written without a flush each (see the constructor)
};

}  // namespace aegis::cli
