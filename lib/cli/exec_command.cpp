#include "cli/exec_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
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

// Feeds `input` and collects the output until the child closes its standard output.
[[nodiscard]] Result<std::string> exchange(int to_child, int from_child, const std::string& input) {
    std::string output;
    std::size_t written = 0;
    if (input.empty()) ::close(to_child), to_child = -1;
    std::array<char, 16384> chunk{};
    while (from_child >= 0) {
        std::array<pollfd, 2> watch{pollfd{from_child, POLLIN, 0}, pollfd{to_child, POLLOUT, 0}};
        const int ready = ::poll(watch.data(), to_child >= 0 ? 2 : 1, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return make_error(ExitCode::failure, "poll: {}", std::strerror(errno));
        if (to_child >= 0 && (watch[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            const ssize_t sent = ::write(to_child, input.data() + written, input.size() - written);
            if (sent > 0) written += static_cast<std::size_t>(sent);
            if ((sent < 0 && errno != EINTR && errno != EAGAIN) || written == input.size()) {
                ::close(to_child);  // done, or the command does not read its input
                to_child = -1;
            }
        }
        if ((watch[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const ssize_t got = ::read(from_child, chunk.data(), chunk.size());
            if (got > 0) {
                output.append(chunk.data(), static_cast<std::size_t>(got));
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                ::close(from_child);
                from_child = -1;
            }
        }
    }
    if (to_child >= 0) ::close(to_child);
    return output;
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

Result<CommandResult> run_command(const std::string& command, const std::string& input, const Environment& extra) {
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
        ::signal(SIGPIPE, SIG_DFL);  // the tool ignores it; the command should not inherit that
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
        ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    auto output = exchange(in[1], out[0], input);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!output) return output.take_error();
    CommandResult result;
    result.output = std::move(*output);
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

CommandPool::~CommandPool() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return running_ == 0; });
}

void CommandPool::start(ipc::DeliveredMessage message) {
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return running_ < jobs_; });
        ++running_;
    }
    std::thread([this, message = std::move(message)]() mutable {
        const std::string input(as_text(message.payload));
        auto result = run_command(command_, input, message_environment(message));
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

}  // namespace aegis::cli
