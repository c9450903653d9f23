#pragma once
// Test helper: a real redis-server on a free loopback port, in a temporary directory, with the
// durability the gateway asks for (append-only file, fsync always, no snapshots). Without
// redis-server the test run exits 77 (ctest's skip) saying why: it must not pass silently.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace aegis::test {

[[nodiscard]] inline std::string redis_server_program() {
    for (const char* candidate : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
        if (::access(candidate, X_OK) == 0) return candidate;
    return {};
}

// Exits the test run with ctest's skip code when there is no redis-server to test against.
inline void require_redis_server() {
    if (!redis_server_program().empty()) return;
    std::fprintf(stderr, "SKIP: redis-server is not installed (scripts/deps.sh installs it)\n");
    std::exit(77);
}

[[nodiscard]] inline std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

[[nodiscard]] inline bool port_open(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool open = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    return open;
}

class RedisTestServer {
public:
    explicit RedisTestServer(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
        require_redis_server();
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-redis-test-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        dir_ = pattern;
        port_ = free_loopback_port();
        start();
    }
    ~RedisTestServer() {
        kill();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    RedisTestServer(const RedisTestServer&) = delete;
    RedisTestServer& operator=(const RedisTestServer&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }

    // Starts it (again: on the same port and directory, so its append-only file is read back).
    void start() {
        std::vector<std::string> args{redis_server_program(),
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--dir",
                                      dir_.string(),
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "yes",
                                      "--appendfsync",
                                      "always",
                                      "--logfile",
                                      (dir_ / "redis.log").string()};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& arg : args) argv.push_back(arg.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!port_open(port_)) {
            REQUIRE(std::chrono::steady_clock::now() < until);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    // kill -9, as a crash.
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGCONT);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    void pause() { ::kill(pid_, SIGSTOP); }
    void resume() { ::kill(pid_, SIGCONT); }

private:
    std::vector<std::string> extra_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace aegis::test
