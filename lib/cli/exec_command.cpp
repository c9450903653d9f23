#include "cli/exec_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "cli/message_format.h"
#include "ipc/unix_socket.h"

extern char** environ;

namespace aegis::cli {

namespace {

[[nodiscard]] std::string env_key(std::string_view key) {
    std::string out;
    for (const char c : key) {
        const auto u = static_cast<unsigned char>(c);
        out += std::isalnum(u) ? static_cast<char>(std::toupper(u)) : '_';
    }
    return out;
}

// This process's environment with `extra` set over it, as execve wants it.
[[nodiscard]] std::vector<std::string> merged_environment(const Environment& extra) {
    std::vector<std::string> out;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const auto name = text.substr(0, text.find('='));
        bool replaced = false;
        for (const auto& [key, value] : extra) replaced = replaced || key == name;
        if (!replaced) out.emplace_back(text);
    }
    for (const auto& [key, value] : extra) out.push_back(key + "=" + value);
    return out;
}

}  // namespace

Environment message_environment(const ipc::DeliveredMessage& message) {
    Environment env{{"AEGIS_CHANNEL", message.channel},
                    {"AEGIS_ID", ipc::to_hex(message.id)},
                    {"AEGIS_ORIGIN_ID", message.origin_id},
                    {"AEGIS_ORIGIN_FINGERPRINT", message.origin_fingerprint},
                    {"AEGIS_KIND", std::string(protocol::to_string(message.kind))},
                    {"AEGIS_CORRELATION", message.correlation ? ipc::to_hex(*message.correlation) : std::string()},
                    {"AEGIS_TIMESTAMP", iso8601_utc(message.timestamp_ms)}};
    for (const auto& [key, value] : message.headers) env.emplace_back("AEGIS_HEADER_" + env_key(key), value);
    return env;
}

Result<CommandResult> run_command(const std::string& command, const std::string& input, const Environment& extra,
                                  const CommandLimits& limits) {
    using Clock = std::chrono::steady_clock;
    const auto env_strings = merged_environment(extra);
    std::vector<char*> envp;
    for (const auto& entry : env_strings) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
    std::array<int, 2> in{-1, -1};
    std::array<int, 2> out{-1, -1};
    if (::pipe2(in.data(), O_CLOEXEC) != 0 || ::pipe2(out.data(), O_CLOEXEC) != 0) {
        return make_error(ExitCode::failure, "cannot make a pipe: {}", std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) return make_error(ExitCode::failure, "cannot fork: {}", std::strerror(errno));
    if (pid == 0) {
        ::setpgid(0, 0);  // its own group: ended with everything it starts
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the tool may block termination signals
        ::signal(SIGPIPE, SIG_DFL);                  // the tool ignores it; the command should not inherit that
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
        ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists before any signal is sent to it
    ::close(in[0]);
    ::close(out[1]);
    // The shell's exit wakes poll (the zombie keeps the group's id reserved until it is reaped).
    const int exited = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    int to_child = in[1];
    int from_child = out[0];
    ::fcntl(to_child, F_SETFL, ::fcntl(to_child, F_GETFL) | O_NONBLOCK);
    const auto close_fd = [](int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    };
    if (input.empty()) close_fd(to_child);

    CommandResult result;
    std::size_t written = 0;
    bool shell_gone = false;
    std::optional<Clock::time_point> ending_since;  // when the group was sent SIGTERM
    bool killed = false;
    const auto started = Clock::now();
    const auto end_group = [pid](int sig) { ::kill(-pid, sig); };
    std::array<char, 16384> chunk{};
    for (;;) {
        const auto now = Clock::now();
        if (!ending_since) {
            const bool stop = limits.stop != nullptr && limits.stop->load();
            const bool late = limits.timeout.count() > 0 && now - started >= limits.timeout;
            if (stop || late) {
                result.stopped = stop;
                result.timed_out = !stop;
                end_group(SIGTERM);
                ending_since = now;
            }
        }
        if (ending_since && !killed && now - *ending_since >= limits.grace) {
            end_group(SIGKILL);
            killed = true;
        }
        if (!shell_gone) {
            siginfo_t info{};
            shell_gone =
                ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
        }
        // Output still open after SIGKILL: a process outside the group holds it; stop reading.
        if (killed && now - *ending_since >= 2 * limits.grace) close_fd(from_child);
        if (shell_gone && from_child < 0) break;
        if (shell_gone && !ending_since) {  // its output is held by something it left running
            end_group(SIGTERM);
            ending_since = now;
        }
        std::array<pollfd, 3> watch{};
        nfds_t count = 0;
        const auto watch_fd = [&](int fd, short events) {
            if (fd >= 0) watch[count++] = pollfd{fd, events, 0};
        };
        watch_fd(from_child, POLLIN);
        watch_fd(to_child, POLLOUT);
        if (!shell_gone) watch_fd(exited, POLLIN);
        // With no pidfd (an old kernel), the shell's exit is noticed within a short tick.
        const int wait_ms = exited < 0 && from_child < 0 ? 5 : 50;
        const int ready = ::poll(watch.data(), count, wait_ms);
        if (ready < 0 && errno != EINTR) {
            end_group(SIGKILL);
            close_fd(to_child);
            close_fd(from_child);
            if (exited >= 0) ::close(exited);
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
            return make_error(ExitCode::failure, "poll: {}", std::strerror(errno));
        }
        for (nfds_t i = 0; ready > 0 && i < count; ++i) {
            const auto& entry = watch[i];
            if (entry.revents == 0) continue;
            if (entry.fd == to_child) {
                const ssize_t sent = ::write(to_child, input.data() + written, input.size() - written);
                if (sent > 0) written += static_cast<std::size_t>(sent);
                if ((sent < 0 && errno != EINTR && errno != EAGAIN) || written == input.size()) {
                    close_fd(to_child);  // done, or the command does not read its input
                }
            } else if (entry.fd == from_child) {
                const ssize_t got = ::read(from_child, chunk.data(), chunk.size());
                if (got > 0) {
                    result.output.append(chunk.data(), static_cast<std::size_t>(got));
                } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                    close_fd(from_child);
                }
            }
        }
    }
    close_fd(to_child);
    if (!ending_since) end_group(SIGTERM);  // what the shell left running in its group
    if (exited >= 0) ::close(exited);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    // Ended for a timeout or a stop: what is left of the group has the rest of the grace period.
    while (ending_since && !killed && ::kill(-pid, 0) == 0) {
        if (Clock::now() - *ending_since >= limits.grace) {
            end_group(SIGKILL);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return result;
}

CommandPool::~CommandPool() {
    stop_all();
}

void CommandPool::start(ipc::DeliveredMessage message) {
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return running_ < jobs_; });
        if (stopping_) return;  // ending: nothing new starts
        ++running_;
    }
    std::thread([this, message = std::move(message)]() mutable {
        const std::string input(as_text(message.payload));
        CommandLimits limits;
        limits.timeout = timeout_;
        limits.stop = &stopping_;
        auto result = run_command(command_, input, message_environment(message), limits);
        std::lock_guard lock(mutex_);
        finished_.push_back(Finished{std::move(message), std::move(result)});
        --running_;
        changed_.notify_all();
    }).detach();
}

std::vector<CommandPool::Finished> CommandPool::take_finished(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, wait, [&] { return !finished_.empty(); });
    std::vector<Finished> out;
    while (!finished_.empty()) {
        out.push_back(std::move(finished_.front()));
        finished_.pop_front();
    }
    return out;
}

std::size_t CommandPool::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

void CommandPool::stop_all() {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.wait(lock, [&] { return running_ == 0; });
}

struct TerminationSignals::Shared {
    std::mutex mutex;
    std::function<void()> cleanup;
};

TerminationSignals::TerminationSignals() : shared_(std::make_shared<Shared>()) {
    sigset_t signals;
    sigemptyset(&signals);
    for (const int each : {SIGINT, SIGTERM, SIGHUP}) {
        // One ignored on start (nohup, a script's background job) stays ignored.
        struct sigaction now {};
        if (::sigaction(each, nullptr, &now) == 0 && now.sa_handler == SIG_IGN) continue;
        sigaddset(&signals, each);
    }
    if (sigisemptyset(&signals) != 0) return;
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::thread([shared = shared_, signals] {
        int caught = 0;
        while (::sigwait(&signals, &caught) != 0) {
        }
        std::lock_guard lock(shared->mutex);  // held until the process ends: the cleanup's owner stays
        if (shared->cleanup) shared->cleanup();
        ::signal(caught, SIG_DFL);
        sigset_t just_this;
        sigemptyset(&just_this);
        sigaddset(&just_this, caught);
        ::pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
        ::raise(caught);
        ::_exit(128 + caught);  // not reached: the signal ends the process
    }).detach();
}

void TerminationSignals::on_signal(std::function<void()> cleanup) {
    std::lock_guard lock(shared_->mutex);
    shared_->cleanup = std::move(cleanup);
}

}  // namespace aegis::cli
