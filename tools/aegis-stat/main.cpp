// aegis-stat: the local broker's health, for people (like tailscale status), scripts (--json),
// Prometheus (--prometheus) and Nagios-style monitoring (--check).

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "cli/duration.h"
#include "cli/status_report.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"

namespace {

namespace po = boost::program_options;
namespace ipc = aegis::ipc;
namespace cli = aegis::cli;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-stat";

volatile std::sig_atomic_t interrupted = 0;

struct Options {
    std::string socket;
    bool json = false;
    bool prometheus = false;
    bool check = false;
    std::optional<std::string> watch;
    std::string timeout = "5s";
    cli::CheckThresholds thresholds;
    bool help = false;
    bool version = false;
    std::string help_text;
};

Options parse_options(int argc, char** argv) {
    Options o;
    po::options_description visible(
        "Usage: aegis-stat [options]\n\n"
        "Shows the state of the local broker (aegis-connect): session, backend, queue, traffic.\n\n"
        "Options");
    // clang-format off
    visible.add_options()
        ("json", po::bool_switch(&o.json), "print the status as one JSON object")
        ("prometheus", po::bool_switch(&o.prometheus), "print Prometheus text exposition (aegis_broker_*)")
        ("watch", po::value<std::string>()->value_name("SECS"), "redraw every SECS until interrupted")
        ("check", po::bool_switch(&o.check), "one Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
        ("warn-queue", po::value<std::uint64_t>()->value_name("N"), "--check: WARNING above N queued messages")
        ("crit-queue", po::value<std::uint64_t>()->value_name("N"), "--check: CRITICAL above N queued messages")
        ("warn-age", po::value<double>()->value_name("SECS"), "--check: WARNING when the oldest waits over SECS")
        ("crit-age", po::value<double>()->value_name("SECS"), "--check: CRITICAL when the oldest waits over SECS")
        ("crit-disconnected", po::value<double>()->value_name("SECS"), "--check: CRITICAL when disconnected over SECS")
        ("timeout", po::value(&o.timeout)->value_name("DURATION"), "give up on the broker after DURATION (default: 5s)")
        ("socket", po::value(&o.socket)->value_name("PATH"), "broker socket (default: $AEGIS_SOCKET or $XDG_RUNTIME_DIR/aegis/broker.sock)")
        ("help,h", po::bool_switch(&o.help), "show this help")
        ("version,V", po::bool_switch(&o.version), "show the version");
    // clang-format on
    po::variables_map values;
    po::store(po::command_line_parser(argc, argv).options(visible).run(), values);
    po::notify(values);
    if (values.count("watch")) o.watch = values["watch"].as<std::string>();
    if (values.count("warn-queue")) o.thresholds.warn_queue = values["warn-queue"].as<std::uint64_t>();
    if (values.count("crit-queue")) o.thresholds.crit_queue = values["crit-queue"].as<std::uint64_t>();
    if (values.count("warn-age")) o.thresholds.warn_age_s = values["warn-age"].as<double>();
    if (values.count("crit-age")) o.thresholds.crit_age_s = values["crit-age"].as<double>();
    if (values.count("crit-disconnected")) o.thresholds.crit_disconnected_s = values["crit-disconnected"].as<double>();
    std::ostringstream text;
    text << visible;
    o.help_text = text.str();
    return o;
}

[[nodiscard]] aegis::Result<nlohmann::json> fetch(const Options& options, std::chrono::milliseconds timeout) {
    const auto deadline = ipc::deadline_after(timeout);
    auto client = ipc::Client::connect(ipc::resolve_socket_path(options.socket), kTool, deadline);
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
    while (interrupted == 0) {
        auto stable = fetch(options, timeout);
        std::string screen = "\033[H\033[2J";
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

int run(int argc, char** argv) {
    const auto options = parse_options(argc, argv);
    if (options.help) {
        fmt::print("{}", options.help_text);
        return 0;
    }
    if (options.version) {
        fmt::print("{}\n", cli::version_line(kTool));
        return 0;
    }
    if ((options.json ? 1 : 0) + (options.prometheus ? 1 : 0) + (options.check ? 1 : 0) > 1) {
        return cli::report(kTool,
                           aegis::make_error(ExitCode::usage, "--json, --prometheus and --check cannot be combined"));
    }
    auto timeout = cli::parse_duration(options.timeout, "--timeout");
    if (!timeout) return cli::report(kTool, timeout.error());
    if (options.watch) {
        auto every = cli::parse_duration(*options.watch, "--watch");
        if (!every) return cli::report(kTool, every.error());
        if (options.check)
            return cli::report(kTool, aegis::make_error(ExitCode::usage, "--watch and --check cannot be combined"));
        return watch(options, *timeout, *every);
    }
    auto stable = fetch(options, *timeout);
    if (options.check) {
        const auto outcome =
            stable ? cli::evaluate_check(*stable, options.thresholds) : cli::unknown_check(stable.error().message);
        fmt::print("{}\n", outcome.line);
        return static_cast<int>(outcome.state);
    }
    if (!stable) return cli::report(kTool, stable.error());
    fmt::print("{}", render(options, *stable));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
