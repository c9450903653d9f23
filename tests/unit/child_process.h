#pragma once
// Test helper: running code in a forked child process and collecting what it writes.

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <functional>
#include <string>

namespace aegis::test {

// Runs `body` in a child process; returns its exit status and what it wrote to `out`.
struct ChildResult {
    int status = 0;
    std::string output;
};

inline ChildResult run_in_child(const std::function<int(int out)>& body) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        ::_exit(body(fds[1]));
    }
    ::close(fds[1]);
    ChildResult result;
    char buffer[4096];
    for (;;) {
        const auto got = ::read(fds[0], buffer, sizeof(buffer));
        if (got <= 0) break;
        result.output.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fds[0]);
    REQUIRE(::waitpid(pid, &result.status, 0) == pid);
    return result;
}

inline void write_text(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const auto wrote = ::write(fd, text.data() + done, text.size() - done);
        if (wrote <= 0) return;
        done += static_cast<std::size_t>(wrote);
    }
}

}  // namespace aegis::test
