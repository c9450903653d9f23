#pragma once
// aegis-sub --exec: run a shell command per message, payload on its standard input, the
// message's fields in its environment, its standard output captured.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "ipc/messages.h"

namespace aegis::cli {

using Environment = std::vector<std::pair<std::string, std::string>>;

// AEGIS_CHANNEL, AEGIS_ID, AEGIS_ORIGIN_ID, AEGIS_ORIGIN_FINGERPRINT, AEGIS_KIND, AEGIS_CORRELATION,
// AEGIS_TIMESTAMP and AEGIS_HEADER_<KEY> (KEY upper-cased, other characters than A-Z0-9 as '_').
[[nodiscard]] Environment message_environment(const ipc::DeliveredMessage& message);

struct CommandResult {
    int exit_status = 0;  // the exit code, or 128 + the signal that ended it
    std::string output;   // its standard output
};

// Runs `/bin/sh -c command` with `input` on its standard input and `extra` added to this
// process's environment. Standard error is inherited.
[[nodiscard]] Result<CommandResult> run_command(const std::string& command, const std::string& input,
                                                const Environment& extra);

// Up to `jobs` commands at once, each on its own thread; finished ones are collected in order of
// completion.
class CommandPool {
public:
    struct Finished {
        ipc::DeliveredMessage message;
        Result<CommandResult> result;
    };

    CommandPool(std::string command, std::size_t jobs) : command_(std::move(command)), jobs_(jobs) {}
    CommandPool(const CommandPool&) = delete;
    CommandPool& operator=(const CommandPool&) = delete;
    ~CommandPool();  // waits for the running commands

    // Starts a command for `message`, first waiting while `jobs` are running.
    void start(ipc::DeliveredMessage message);
    // The commands finished so far; waits up to `wait` for one when none has.
    [[nodiscard]] std::vector<Finished> take_finished(std::chrono::milliseconds wait);
    [[nodiscard]] std::size_t running() const;

private:
    std::string command_;
    std::size_t jobs_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t running_ = 0;
    std::deque<Finished> finished_;
};

}  // namespace aegis::cli
