#pragma once
// aegis-sub --exec: run a shell command per message, payload on its standard input, the
// message's fields in its environment, its standard output captured. Each command runs in a
// process group of its own, so that it can be ended with everything it started.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
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

// How long a command may run and how it is ended.
struct CommandLimits {
    std::chrono::milliseconds timeout{0};  // 0: no limit
    // Between SIGTERM to the command's process group and SIGKILL.
    std::chrono::milliseconds grace{2000};
    // Set by another thread: end the command now (its process group gets SIGTERM, then SIGKILL).
    const std::atomic<bool>* stop = nullptr;
};

struct CommandResult {
    int exit_status = 0;     // the exit code, or 128 + the signal that ended it
    std::string output;      // its standard output
    bool timed_out = false;  // ended for CommandLimits::timeout (output is what came before)
    bool stopped = false;    // ended for CommandLimits::stop
};

// Runs `/bin/sh -c command` in a new process group, with `input` on its standard input and
// `extra` added to this process's environment. Standard error is inherited. Returns once the
// shell has exited and its standard output is closed; what the shell left running in its
// process group is then sent SIGTERM. Past `limits.timeout` (or on `limits.stop`) the whole
// group gets SIGTERM, and SIGKILL `limits.grace` later if the shell or its output is still there.
[[nodiscard]] Result<CommandResult> run_command(const std::string& command, const std::string& input,
                                                const Environment& extra, const CommandLimits& limits = {});

// Up to `jobs` commands at once, each on its own thread; finished ones are collected in order of
// completion.
class CommandPool {
public:
    struct Finished {
        ipc::DeliveredMessage message;
        Result<CommandResult> result;
    };

    CommandPool(std::string command, std::size_t jobs, std::chrono::milliseconds timeout = {})
        : command_(std::move(command)), jobs_(jobs), timeout_(timeout) {}
    CommandPool(const CommandPool&) = delete;
    CommandPool& operator=(const CommandPool&) = delete;
    ~CommandPool();  // ends the running commands (stop_all)

    // Starts a command for `message`, first waiting while `jobs` are running.
    void start(ipc::DeliveredMessage message);
    // The commands finished so far; waits up to `wait` for one when none has.
    [[nodiscard]] std::vector<Finished> take_finished(std::chrono::milliseconds wait);
    [[nodiscard]] std::size_t running() const;
    // Ends every running command's process group (SIGTERM, SIGKILL after the grace period) and
    // waits until their threads are done. Safe to call from any thread, more than once.
    void stop_all();

private:
    std::string command_;
    std::size_t jobs_;
    std::chrono::milliseconds timeout_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t running_ = 0;
    std::deque<Finished> finished_;
};

// Blocks SIGINT, SIGTERM and SIGHUP (those not ignored already) in this thread (and the threads
// it starts later) and waits for them on a thread of its own: on one, the cleanup set last runs, then the process ends
// by that signal as it would have without this. Construct it before any other thread starts.
// Commands started by run_command get the signals unblocked again.
class TerminationSignals {
public:
    TerminationSignals();
    TerminationSignals(const TerminationSignals&) = delete;
    TerminationSignals& operator=(const TerminationSignals&) = delete;
    // What to do before ending (empty: nothing). Waits while a signal's cleanup runs.
    void on_signal(std::function<void()> cleanup);

private:
    struct Shared;
    std::shared_ptr<Shared> shared_;
};

}  // namespace aegis::cli
