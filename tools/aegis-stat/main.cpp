// aegis-stat: the local broker's health, for people (like tailscale status), scripts (--json),
// Prometheus (--prometheus) and Nagios-style monitoring (--check).

#include <fmt/format.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <thread>

#include "cli/duration.h"
#include "cli/number_option.h"
#include "cli/status_report.h"
#include "cli/tool.h"
#include "core/clock.h"
#include "fleet.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"

namespace {

namespace po = boost::program_options;
namespace ipc = aegis::ipc;
namespace cli = aegis::cli;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-stat";
constexpr std::uint64_t kMaxCount = 1'000'000'000;
constexpr double kMaxSeconds = 31'536'000;  // a year

volatile std::sig_atomic_t interrupted = 0;

struct Options {
    cli::CommonOptions common;  // --socket, --timeout, --help, --version
    bool json = false;
    bool prometheus = false;
    bool check = false;
    std::optional<std::string> watch;
    std::optional<std::string> fleet;
    cli::CheckThresholds thresholds;
};

Options parse_options(int argc, char** argv) {
    Options o;
    cli::CommandLine line(
        "Usage: aegis-stat [options]\n\n"
        "Shows the state of the local broker (aegis-connect): session, backend, queue, traffic.\n\n"
        "Options");
    // clang-format off
    line.add_options()
        ("json", po::bool_switch(&o.json), "print the status as one JSON object")
        ("prometheus", po::bool_switch(&o.prometheus), "print Prometheus text exposition (aegis_broker_*)")
        ("watch", po::value<std::string>()->value_name("SECS"), "redraw every SECS (100ms-1h) until interrupted")
        ("fleet", po::value<std::string>()->value_name("URL"), "show every identity a gateway knows, from its admin endpoint (http://HOST:PORT)")
        ("check", po::bool_switch(&o.check), "one Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
        ("warn-queue", cli::whole_number(nullptr, 0, kMaxCount)->value_name("N"), "--check: WARNING above N queued messages (0-1000000000)")
        ("crit-queue", cli::whole_number(nullptr, 0, kMaxCount)->value_name("N"), "--check: CRITICAL above N queued messages (0-1000000000)")
        ("warn-dead", cli::whole_number(nullptr, 0, kMaxCount)->value_name("N"), "--check: WARNING above N dead letters (0-1000000000)")
        ("crit-dead", cli::whole_number(nullptr, 0, kMaxCount)->value_name("N"), "--check: CRITICAL above N dead letters (0-1000000000)")
        ("warn-age", cli::seconds(nullptr, 0, kMaxSeconds)->value_name("SECS"), "--check: WARNING when the oldest waits over SECS (0-31536000)")
        ("crit-age", cli::seconds(nullptr, 0, kMaxSeconds)->value_name("SECS"), "--check: CRITICAL when the oldest waits over SECS (0-31536000)")
        ("crit-disconnected", cli::seconds(nullptr, 0, kMaxSeconds)->value_name("SECS"), "--check: CRITICAL when disconnected over SECS (0-31536000)");
    // clang-format on
    line.timeout(std::chrono::seconds(5), std::chrono::hours(1), "give up on the broker after DURATION");
    line.socket().help_and_version();
    if (!line.parse(argc, argv, o.common)) return o;  // --help or --version
    const auto& values = line.values();
    if (values.count("watch")) o.watch = values["watch"].as<std::string>();
    if (values.count("fleet")) o.fleet = values["fleet"].as<std::string>();
    if (values.count("warn-queue")) o.thresholds.warn_queue = values["warn-queue"].as<std::uint64_t>();
    if (values.count("crit-queue")) o.thresholds.crit_queue = values["crit-queue"].as<std::uint64_t>();
    if (values.count("warn-dead")) o.thresholds.warn_dead = values["warn-dead"].as<std::uint64_t>();
    if (values.count("crit-dead")) o.thresholds.crit_dead = values["crit-dead"].as<std::uint64_t>();
    if (values.count("warn-age")) o.thresholds.warn_age_s = values["warn-age"].as<double>();
    if (values.count("crit-age")) o.thresholds.crit_age_s = values["crit-age"].as<double>();
    if (values.count("crit-disconnected")) o.thresholds.crit_disconnected_s = values["crit-disconnected"].as<double>();
    return o;
}

[[nodiscard]] aegis::Result<nlohmann::json> fetch(const Options& options, std::chrono::milliseconds timeout) {
    const auto deadline = ipc::deadline_after(timeout);
    auto client = ipc::Client::connect(ipc::find_broker_socket(options.common.socket), kTool, deadline);
    if (!client) return client.take_error();
    auto status = client->status(deadline);
    if (!status) return status.take_error();
    return cli::stable_status(*status, aegis::unix_time_ms());
}

[[nodiscard]] std::string render(const Options& options, const nlohmann::json& stable) {
    if (options.json) return stable.dump(2) + '\n';
    if (options.prometheus) return cli::prometheus_status(stable);
    return cli::human_status(stable);
}

int watch(const Options& options, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
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

// Under --check a usage error is reported as monitoring plugins do: an UNKNOWN line, exit 3.
[[nodiscard]] bool asks_check(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--check") return true;
    }
    return false;
}

int usage_failure(bool check, const aegis::Error& error) {
    if (!check) return cli::report(kTool, error);
    const auto outcome = cli::unknown_check(error.message);
    fmt::print("{}\n", outcome.line);
    return static_cast<int>(outcome.state);
}

int run(int argc, char** argv) {
    const bool check = asks_check(argc, argv);
    Options options;
    try {
        options = parse_options(argc, argv);
    } catch (const po::error& e) {
        if (!check) throw;
        return usage_failure(check, aegis::make_error(ExitCode::usage, "{}", e.what()));
    }
    if (cli::print_help_or_version(kTool, options.common)) return 0;
    if ((options.json ? 1 : 0) + (options.prometheus ? 1 : 0) + (options.check ? 1 : 0) > 1) {
        return usage_failure(check,
                             aegis::make_error(ExitCode::usage, "--json, --prometheus and --check cannot be combined"));
    }
    auto timeout = options.common.timeout_or_default();
    if (!timeout) return usage_failure(check, timeout.error());
    if (auto valid = cli::validate_thresholds(options.thresholds); !valid) return usage_failure(check, valid.error());
    if (options.fleet) {
        if (options.prometheus || options.check || options.watch)
            return usage_failure(
                check,
                aegis::make_error(ExitCode::usage, "--fleet cannot be combined with --prometheus, --check or --watch"));
        return aegis::stat::show_fleet(*options.fleet, options.json, *timeout);
    }
    if (options.watch) {
        auto every =
            cli::parse_duration(*options.watch, "--watch", std::chrono::milliseconds(100), std::chrono::hours(1));
        if (!every) return cli::report(kTool, every.error());
        if (options.check)
            return usage_failure(check, aegis::make_error(ExitCode::usage, "--watch and --check cannot be combined"));
        return watch(options, *timeout, *every);
    }
    auto stable = fetch(options, *timeout);
    if (options.check) {
        const auto outcome =
            stable ? cli::evaluate_check(*stable, options.thresholds) : cli::unknown_check(stable.error().message);
        fmt::print("{}\n", outcome.line);
        return static_cast<int>(outcome.state);
    }
    if (!stable && options.prometheus) {
        fmt::print("{}", cli::prometheus_broker_down());  // a textfile collector sees the broker down
        return 0;
    }
    if (!stable) return cli::report(kTool, stable.error());
    fmt::print("{}", render(options, *stable));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
