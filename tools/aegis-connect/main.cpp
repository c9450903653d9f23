// aegis-connect: start the broker (detached, or in the foreground), or stop it.

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "broker/daemon.h"
#include "broker/launch.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "options.h"

namespace {

namespace broker = aegis::broker;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-connect";
constexpr std::chrono::seconds kStopLimit{15};
constexpr std::chrono::seconds kReportMargin{15};

// One line per event on stderr (the log file once detached), never a secret.
void log_line(std::string_view line) {
    const auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    fmt::print(stderr, "{:%Y-%m-%dT%H:%M:%S}Z {}[{}]: {}\n", now, kTool, ::getpid(), line);
    std::fflush(stderr);
}

int stop(const aegis::connect::Options& options) {
    const auto socket = aegis::ipc::resolve_socket_path(options.connect.socket);
    if (auto stopped = aegis::ipc::stop_broker(socket, aegis::ipc::deadline_after(kStopLimit)); !stopped) {
        return aegis::cli::report(kTool, stopped.error());
    }
    fmt::print("stopped the broker on {}\n", socket.string());
    return 0;
}

// "Reconnect now": the broker on the socket ends its backoff wait (PROTOCOL.md §8.3.7).
int reconnect(const aegis::connect::Options& options) {
    const auto socket = aegis::ipc::resolve_socket_path(options.connect.socket);
    const auto deadline = aegis::ipc::deadline_after(kStopLimit);
    auto client = aegis::ipc::Client::connect(socket, kTool, deadline);
    if (!client) return aegis::cli::report(kTool, client.error());
    auto answer = client->call(aegis::ipc::to_header(aegis::ipc::ReconnectRequest{}), {}, deadline);
    if (!answer) return aegis::cli::report(kTool, answer.error());
    const auto state = answer->header.value("state", std::string("unknown"));
    if (answer->header.value("reconnecting", false)) {
        fmt::print("the broker on {} is connecting now (it was {})\n", socket.string(), state);
    } else {
        fmt::print("the broker on {} is {}: nothing to do\n", socket.string(), state);
    }
    return 0;
}

int run_foreground(broker::PreparedBroker& prepared) {
    auto ran = broker::run_broker(prepared.config, log_line, [](const aegis::Result<broker::Ready>&) {});
    return ran ? 0 : aegis::cli::report(kTool, ran.error());
}

int run_detached(broker::PreparedBroker& prepared, const aegis::connect::Options& options) {
    auto daemon = broker::Daemon::detach(prepared.log_file);
    if (!daemon) return aegis::cli::report(kTool, daemon.error());
    if (daemon->side() == broker::Daemon::Side::parent) {
        const auto limit = options.connect.no_wait ? std::chrono::milliseconds(kReportMargin)
                                                   : prepared.config.ready_timeout + kReportMargin;
        auto ready = daemon->wait_ready(limit);
        if (!ready) return aegis::cli::report(kTool, ready.error());
        fmt::print("{}\n", *ready);
        return 0;
    }
    prepared.config.reopen_log = [log_file = prepared.log_file] { return broker::reopen_log_file(log_file); };
    auto ran = broker::run_broker(prepared.config, log_line,
                                  [&daemon](const aegis::Result<broker::Ready>& outcome) { daemon->report(outcome); });
    if (!ran) {
        daemon->report_failure(ran.error());  // start() failed before on_ready (e.g. cannot listen)
        return aegis::to_int(ran.error().exit);
    }
    return 0;
}

int run(int argc, char** argv) {
    const auto options = aegis::connect::parse_options(argc, argv);
    if (options.help) {
        fmt::print("{}", options.help_text);
        return 0;
    }
    if (options.version) {
        fmt::print("{}\n", aegis::cli::version_line(kTool));
        return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);
    if (options.stop && options.reconnect) {
        return aegis::cli::report(kTool,
                                  aegis::make_error(ExitCode::usage, "--stop and --reconnect cannot be combined"));
    }
    if (options.stop) return stop(options);
    if (options.reconnect) return reconnect(options);
    if (options.connect.url.empty()) {
        return aegis::cli::report(
            kTool, aegis::make_error(ExitCode::usage, "a gateway URL is required (see {} --help)", kTool));
    }
    auto prepared = broker::prepare_broker(options.connect);
    if (!prepared) return aegis::cli::report(kTool, prepared.error());
    return options.foreground ? run_foreground(**prepared) : run_detached(**prepared, options);
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
