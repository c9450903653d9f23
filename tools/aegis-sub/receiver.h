#pragma once
// aegis-sub's loop: read events, filter, print or run the command, reply to requests and
// acknowledge durable positions once a message is fully handled.

#include <map>
#include <memory>
#include <string>

#include "cli/ack_tracker.h"
#include "cli/exec_command.h"
#include "ipc/client.h"
#include "options.h"

namespace aegis::sub {

class Receiver {
public:
    Receiver(ipc::Client& client, const Options& options);
    // Runs until done; the exit code (errors are reported on stderr).
    [[nodiscard]] int run();

private:
    enum class Step { go_on, stop };
    [[nodiscard]] Result<Step> on_message(ipc::DeliveredMessage message, std::uint64_t cursor_seq);
    [[nodiscard]] Result<Step> on_finished(cli::CommandPool::Finished finished);
    [[nodiscard]] Result<Step> collect_finished(std::chrono::milliseconds wait);
    [[nodiscard]] Result<void> handled(std::uint64_t cursor_seq);
    [[nodiscard]] bool done() const;
    [[nodiscard]] int timed_out() const;

    ipc::Client& client_;
    const Options& options_;
    std::unique_ptr<cli::CommandPool> pool_;
    cli::AckTracker acks_;
    std::map<std::string, std::uint64_t> running_seq_;  // message id -> cursor position
    std::uint64_t received_ = 0;
    bool caught_up_ = false;
};

}  // namespace aegis::sub
