#include "options.h"

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>

#include "cli/number_option.h"

namespace aegis::queue {

namespace po = boost::program_options;

Options parse_options(int argc, char** argv) {
    Options o;
    cli::CommandLine line(
        "Usage: aegis-queue [options] COMMAND [ID|NAME]\n\n"
        "Commands: ls, show ID, retry ID|--dead, drop ID, purge --dead|--all, stats,\n"
        "cursors, cursor-rm NAME.\n"
        "Manages the outbound queue and the durable subscriptions of the local broker (aegis-connect).\n\n"
        "Options");
    // clang-format off
    line.add_options()
        ("state", po::value(&o.state)->value_name("STATE"), "ls: waiting, in_flight, dead or all (default)")
        ("limit", cli::whole_number(&o.limit, 1, 100'000)->value_name("N"), "ls: at most N messages (1-100000, default: 100)")
        ("dead", po::bool_switch(&o.dead), "retry or purge every dead message")
        ("all", po::bool_switch(&o.all), "purge every message")
        ("ttl", po::value(&o.ttl)->value_name("DURATION")->notifier([&o](const std::string&) { o.ttl_given = true; }), "retry: give expired messages a fresh TTL of DURATION (1ms-720h)")
        ("yes,y", po::bool_switch(&o.yes), "purge without asking")
        ("json", po::bool_switch(&o.json), "print the broker's answer as JSON");
    // clang-format on
    line.timeout(std::chrono::seconds(10), std::chrono::hours(1)).socket().help_and_version();
    line.operands("command", po::value(&o.command), 1).operands("args", po::value(&o.args)->multitoken(), -1);
    (void)line.parse(argc, argv, o.common);  // --help and --version are answered by run()
    return o;
}

Error usage(std::string_view what) {
    return cli::usage_error(kTool, what);
}

Result<void> check_operands(const Options& o, std::size_t want) {
    if (o.args.size() != want) {
        return usage(want != 0 ? fmt::format("{} needs one message ID", o.command)
                               : fmt::format("{} takes no argument", o.command));
    }
    if (o.ttl_given && o.command != "retry") return usage("--ttl goes with retry");
    return {};
}

}  // namespace aegis::queue
