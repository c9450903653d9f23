#pragma once
// aegis-sub's loop: read events, filter, print or run the command, reply to requests and
// acknowledge durable positions once a message is fully handled.

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "cli/ack_tracker.h"
#include "cli/exec_command.h"
#include "cli/unconfirmed_writes.h"
#include "ipc/client.h"
#include "options.h"

namespace aegis::sub {

class Receiver {
public:
    Receiver(ipc::Client& client, const Options& options);
    // Runs until done; the exit code (errors are reported on stderr).
    [[nodiscard]] int run();
    // Ends the running --exec commands' process groups and waits for them (any thread).
    void stop_commands();

private:
    enum class Step { go_on, stop };
    [[nodiscard]] Result<Step> on_message(ipc::DeliveredMessage message, std::uint64_t cursor_seq);
    [[nodiscard]] Result<Step> on_finished(cli::CommandPool::Finished finished);
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

    ipc::Client& client_;
    const Options& options_;
    std::unique_ptr<cli::CommandPool> pool_;
    cli::AckTracker acks_;
    cli::UnconfirmedWrites unconfirmed_;
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

}  // namespace aegis::sub
