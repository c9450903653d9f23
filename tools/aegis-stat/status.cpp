#include "status.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "core/clock.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"

namespace aegis::stat {

namespace {

volatile std::sig_atomic_t interrupted = 0;

[[nodiscard]] Result<nlohmann::json> fetch(const Options& options, std::chrono::milliseconds timeout) {
    const auto deadline = ipc::deadline_after(timeout);
    auto client = ipc::Client::connect(ipc::find_broker_socket(options.common.socket), kTool, deadline);
    if (!client) return client.take_error();
    auto status = client->status(deadline);
    if (!status) return status.take_error();
    return cli::stable_status(*status, unix_time_ms());
}

[[nodiscard]] std::string render(const Options& options, const nlohmann::json& stable) {
    if (options.json) return stable.dump(2) + '\n';
    if (options.prometheus) return cli::prometheus_status(stable);
    return cli::human_status(stable);
}

}  // namespace

int show_status(const Options& options, std::chrono::milliseconds timeout) {
    auto stable = fetch(options, timeout);
    if (!stable && options.prometheus) {
        fmt::print("{}", cli::prometheus_broker_down());  // a textfile collector sees the broker down
        return 0;
    }
    if (!stable) return cli::report(kTool, stable.error());
    fmt::print("{}", render(options, *stable));
    return 0;
}

int check_status(const Options& options, std::chrono::milliseconds timeout) {
    auto stable = fetch(options, timeout);
    const auto outcome =
        stable ? cli::evaluate_check(*stable, options.thresholds) : cli::unknown_check(stable.error().message);
    fmt::print("{}\n", outcome.line);
    return static_cast<int>(outcome.state);
}

int watch_status(const Options& options, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
    std::signal(SIGINT, [](int) { interrupted = 1; });
    std::signal(SIGTERM, [](int) { interrupted = 1; });
    const bool terminal = ::isatty(STDOUT_FILENO) == 1;
    while (interrupted == 0) {
        auto stable = fetch(options, timeout);
        // Clearing the screen is for a terminal; a pipe or a file gets one report after another.
        std::string screen = terminal ? "\033[H\033[2J" : "";
        screen += stable ? render(options, *stable) : fmt::format("{}: error: {}\n", kTool, stable.error().message);
        fmt::print("{}", screen);
        std::fflush(stdout);
        const auto until = std::chrono::steady_clock::now() + every;
        while (interrupted == 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    return 0;
}

}  // namespace aegis::stat
