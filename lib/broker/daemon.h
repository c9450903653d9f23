#pragma once
// Detaching the broker from the terminal while the starting command waits for the outcome:
// the daemon reports "ready" or the failure (with its exit code) through a pipe, so
// `aegis-connect` returns only once the session is up or has failed.

#include <chrono>
#include <filesystem>
#include <string>

#include "broker/broker.h"
#include "core/result.h"

namespace aegis::broker {

// After a rotation (SIGHUP): opens `log_file` again (0600, appended) as stdout and stderr.
[[nodiscard]] Result<void> reopen_log_file(const std::filesystem::path& log_file);

class Daemon {
public:
    enum class Side { parent, daemon };

    // Opens the log file (0600, appended), then forks twice: the daemon runs in a new session
    // with its working directory at /, stdin from /dev/null and stdout/stderr to the log file.
    // Returns in both the starting process (Side::parent) and the daemon (Side::daemon).
    [[nodiscard]] static Result<Daemon> detach(const std::filesystem::path& log_file);

    Daemon(Daemon&& other) noexcept;
    Daemon& operator=(Daemon&&) = delete;
    ~Daemon();

    [[nodiscard]] Side side() const { return side_; }
    // Parent: the daemon's report, waiting at most `limit`; its start-up error as an Error.
    [[nodiscard]] Result<std::string> wait_ready(std::chrono::milliseconds limit);
    // Daemon: tells the parent how start-up went. Only the first report counts.
    void report(const Result<Ready>& outcome);
    void report_failure(const Error& error) { report(Result<Ready>(error)); }

private:
    Daemon(Side side, int fd, std::filesystem::path log_file) : side_(side), fd_(fd), log_file_(std::move(log_file)) {}
    Side side_;
    int fd_;  // the pipe's read end (parent) or write end (daemon); -1 once used
    std::filesystem::path log_file_;
};

}  // namespace aegis::broker
