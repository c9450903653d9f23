// aegis-stat: the local broker's health, for people (like tailscale status), scripts (--json),
// Prometheus (--prometheus) and Nagios-style monitoring (--check); --fleet shows a gateway's
// view of its fleet. Each view is a short file (status.h, fleet.h).

#include <fmt/format.h>

#include <boost/program_options.hpp>

#include "cli/duration.h"
#include "cli/tool.h"
#include "fleet.h"
#include "options.h"
#include "status.h"

namespace {

namespace cli = aegis::cli;
namespace stat = aegis::stat;
using aegis::ExitCode;
using stat::kTool;

int usage_failure(bool check, const aegis::Error& error) {
    if (!check) return cli::report(kTool, error);
    const auto outcome = cli::unknown_check(error.message);
    fmt::print("{}\n", outcome.line);
    return static_cast<int>(outcome.state);
}

int run(int argc, char** argv) {
    const bool check = stat::asks_check(argc, argv);
    stat::Options options;
    try {
        options = stat::parse_options(argc, argv);
    } catch (const boost::program_options::error& e) {
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
        return stat::show_fleet(*options.fleet, options.json, *timeout);
    }
    if (options.watch) {
        auto every =
            cli::parse_duration(*options.watch, "--watch", std::chrono::milliseconds(100), std::chrono::hours(1));
        if (!every) return cli::report(kTool, every.error());
        if (options.check)
            return usage_failure(check, aegis::make_error(ExitCode::usage, "--watch and --check cannot be combined"));
        return stat::watch_status(options, *timeout, *every);
    }
    if (options.check) return stat::check_status(options, *timeout);
    return stat::show_status(options, *timeout);
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
