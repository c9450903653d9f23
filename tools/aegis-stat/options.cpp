#include "options.h"

#include <boost/program_options.hpp>
#include <chrono>

#include "cli/duration.h"
#include "cli/number_option.h"

namespace aegis::stat {

namespace po = boost::program_options;

namespace {

constexpr std::uint64_t kMaxCount = 1'000'000'000;
constexpr double kMaxSeconds = 31'536'000;  // a year

}  // namespace

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

bool asks_check(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--check") return true;
    }
    return false;
}

}  // namespace aegis::stat
