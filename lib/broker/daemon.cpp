#include "broker/daemon.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace aegis::broker {

namespace {

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const auto written = ::write(fd, text.data(), text.size());
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return;
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

// Runs in the daemon: a new session, no controlling terminal, nothing of the caller's kept open.
void become_daemon(int log_fd) {
    ::setsid();
    if (::chdir("/") != 0) {
        // Nothing depends on the working directory; a daemon keeps going where it is.
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        ::dup2(null_fd, STDIN_FILENO);
        ::close(null_fd);
    }
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(log_fd);
}

}  // namespace

Result<void> reopen_log_file(const std::filesystem::path& log_file) {
    const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return make_error(ExitCode::failure, "cannot open log file {}: {}", log_file.string(), std::strerror(errno));
    std::fflush(nullptr);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(log_fd);
    return {};
}

Result<Daemon> Daemon::detach(const std::filesystem::path& log_file) {
    const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return make_error(ExitCode::failure, "cannot open log file {}: {}", log_file.string(), std::strerror(errno));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        ::close(log_fd);
        return make_error(ExitCode::failure, "cannot create a pipe: {}", std::strerror(errno));
    }
    std::fflush(nullptr);
    const pid_t first = ::fork();
    if (first < 0) {
        ::close(log_fd);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        return make_error(ExitCode::failure, "cannot fork: {}", std::strerror(errno));
    }
    if (first > 0) {
        ::close(log_fd);
        ::close(pipe_fds[1]);
        int ignored = 0;
        while (::waitpid(first, &ignored, 0) < 0 && errno == EINTR) {
        }
        return Daemon(Side::parent, pipe_fds[0], log_file);
    }
    // First child: leave the caller's session, then fork again so the daemon never owns a terminal.
    ::close(pipe_fds[0]);
    ::setsid();
    const pid_t second = ::fork();
    if (second != 0) ::_exit(second < 0 ? 1 : 0);
    become_daemon(log_fd);
    return Daemon(Side::daemon, pipe_fds[1], log_file);
}

Daemon::Daemon(Daemon&& other) noexcept
    : side_(other.side_), fd_(std::exchange(other.fd_, -1)), log_file_(std::move(other.log_file_)) {}

Daemon::~Daemon() {
    if (fd_ >= 0) ::close(fd_);
}

Result<std::string> Daemon::wait_ready(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string text;
    char chunk[512];
    while (text.find('\n') == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return make_error(ExitCode::timeout, "the broker did not report within {}s (see {})",
                              std::chrono::duration_cast<std::chrono::seconds>(limit).count(), log_file_.string());
        }
        pollfd watch{fd_, POLLIN, 0};
        const int ready = ::poll(&watch, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        const auto got = ::read(fd_, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            return make_error(ExitCode::failure, "the broker exited during start-up (see {})", log_file_.string());
        }
        text.append(chunk, static_cast<std::size_t>(got));
    }
    ::close(fd_);
    fd_ = -1;
    text.resize(text.find('\n'));
    // "<exit code> <message>": 0 is ready, anything else the failure's exit code.
    const auto space = text.find(' ');
    int code = to_int(ExitCode::failure);
    const auto digits = std::string_view(text).substr(0, space);
    std::from_chars(digits.data(), digits.data() + digits.size(), code);
    const std::string message = space == std::string::npos ? std::string() : text.substr(space + 1);
    if (code == 0) return message;
    const bool known = code >= 1 && code <= to_int(ExitCode::bad_input);
    return Error{known ? static_cast<ExitCode>(code) : ExitCode::failure, message, 0};
}

void Daemon::report(const Result<Ready>& outcome) {
    if (fd_ < 0 || side_ != Side::daemon) return;
    std::string line = outcome ? fmt::format("0 {}", outcome->summary)
                               : fmt::format("{} {}", to_int(outcome.error().exit), outcome.error().message);
    for (char& c : line) {
        if (c == '\n') c = ' ';
    }
    line += '\n';
    write_all(fd_, line);
    ::close(fd_);
    fd_ = -1;
}

}  // namespace aegis::broker
