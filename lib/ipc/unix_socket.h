#pragma once
// A connected Unix stream socket's file descriptor, owned, for the blocking client and the
// socket-path probe.

#include <filesystem>
#include <utility>
#include <variant>

#include "core/result.h"

namespace aegis::ipc {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    void reset();

private:
    int fd_ = -1;
};

// The connected socket, or the errno of the failed socket()/connect().
[[nodiscard]] std::variant<UniqueFd, int> try_connect_unix(const std::filesystem::path& path);

// Connects, with ExitCode::unreachable and a message naming the cause: no socket, nobody
// listening, permission denied.
[[nodiscard]] Result<UniqueFd> connect_unix(const std::filesystem::path& path);

}  // namespace aegis::ipc
