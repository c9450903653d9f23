// aegis-connect: start the broker (detached, or in the foreground), or stop it.

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "broker/config_check.h"
#include "broker/daemon.h"
#include "broker/launch.h"
#include "cli/tool.h"
#include "core/service_notify.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "options.h"

namespace {

namespace broker = aegis::broker;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-connect";
constexpr std::chrono::seconds kStopLimit{15};
constexpr std::chrono::seconds kReportMargin{15};

// How log lines look (--log-level, --log-format, journald); set once the options are read.
aegis::log::Settings log_settings{std::string(kTool), true};

// One line per event on stderr (the log file once detached), never a secret.
void log_line(std::string_view line) {
    aegis::log::write_line(log_settings, line);
}

int stop(const aegis::connect::Options& options) {
    const auto socket = aegis::ipc::find_broker_socket(options.connect.socket);
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

// Under systemd (Type=notify): READY=1 once the broker is ready (with --no-wait, once its socket
// serves), and the session's state as STATUS= lines.
int run_foreground(broker::PreparedBroker& prepared) {
    prepared.config.on_status = [](std::string_view status) { aegis::service::notify_status(status); };
    auto ran = broker::run_broker(prepared.config, log_line, [](const aegis::Result<broker::Ready>& outcome) {
        if (outcome) aegis::service::notify_ready(outcome->summary);
    });
    aegis::service::notify_stopping("stopped");
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

// A bad configuration stops the start (exit 6): its first problem on one line, or, for
// --check-config, every problem on a line of its own.
int report_problems(const std::vector<std::string>& problems, bool every = false) {
    if (every) {
        for (const auto& problem : problems) fmt::print(stderr, "{}: error: {}\n", kTool, problem);
        return aegis::to_int(ExitCode::bad_input);
    }
    auto error = aegis::make_error(ExitCode::bad_input, "{}", problems.front());
    if (problems.size() > 1)
        error.message += fmt::format(" (and {} more problems: see {} --check-config)", problems.size() - 1, kTool);
    return aegis::cli::report(kTool, error);
}

int check_config(const aegis::connect::Options& options) {
    auto problems = options.config_problems;
    for (auto& problem : broker::check_broker_config(options.connect)) problems.push_back(std::move(problem));
    if (!problems.empty()) return report_problems(problems, true);
    fmt::print("{}: the configuration is fine\n", kTool);
    return 0;
}

int run(int argc, char** argv) {
    const auto options = aegis::connect::parse_options(argc, argv);
    if (aegis::cli::print_help_or_version(kTool, options.common)) return 0;
    log_settings.level = options.log_level;
    log_settings.format = options.log_format;
    log_settings.journal = aegis::log::stderr_is_journal();
    if (options.check_config) return check_config(options);
    if (!options.config_problems.empty()) return report_problems(options.config_problems);
    std::signal(SIGPIPE, SIG_IGN);
    if (options.check && (options.stop || options.reconnect || options.foreground)) {
        return aegis::cli::report(
            kTool,
            aegis::make_error(ExitCode::usage, "--check cannot be combined with --stop, --reconnect or --foreground"));
    }
    if (options.json && !options.check) {
        return aegis::cli::report(kTool, aegis::make_error(ExitCode::usage, "--json goes with --check"));
    }
    if (options.stop && options.reconnect) {
        return aegis::cli::report(kTool,
                                  aegis::make_error(ExitCode::usage, "--stop and --reconnect cannot be combined"));
    }
    if (options.check && !options.connect.more_urls.empty()) {
        return aegis::cli::report(kTool, aegis::make_error(ExitCode::usage, "--check tests one gateway URL at a time"));
    }
    if (options.check) return aegis::connect::run_check(options);
    if (options.stop) return stop(options);
    if (options.reconnect) return reconnect(options);
    if (options.connect.url.empty()) {
        return aegis::cli::report(kTool, aegis::cli::usage_error(kTool, "a gateway URL is required"));
    }
    auto prepared = broker::prepare_broker(options.connect);
    if (!prepared) return aegis::cli::report(kTool, prepared.error());
    return options.foreground ? run_foreground(**prepared) : run_detached(**prepared, options);
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
