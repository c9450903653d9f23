// aegis-sub: print the messages the local broker delivers for channel patterns.

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "channel/channel.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "output.h"

namespace {

namespace po = boost::program_options;
namespace ipc = aegis::ipc;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-sub";

struct Options {
    std::string socket;
    std::vector<std::string> patterns;
    std::optional<std::uint64_t> count;
    std::optional<double> wait_s;
    bool verbose = false;
    bool json = false;
    bool help = false;
    bool version = false;
    std::string help_text;
};

Options parse_options(int argc, char** argv) {
    Options options;
    po::options_description visible(
        "Usage: aegis-sub [options] PATTERN...\n\n"
        "Subscribes to channel patterns through the local broker (aegis-connect) and prints\n"
        "each message's payload on its own line. '*' matches one token, '>' the rest.\n\n"
        "Options");
    // clang-format off
    visible.add_options()
        ("count,C", po::value<std::uint64_t>()->value_name("N"), "exit 0 after N messages")
        ("wait,W", po::value<double>()->value_name("SECS"), "stop after SECS; exit 5 if fewer than N (or no) messages came")
        ("verbose,v", po::bool_switch(&options.verbose), "prefix each payload with its channel and a space")
        ("json", po::bool_switch(&options.json), "one JSON object per message: every envelope field and the payload")
        ("socket", po::value(&options.socket)->value_name("PATH"), "broker socket (default: $AEGIS_SOCKET or $XDG_RUNTIME_DIR/aegis/broker.sock)")
        ("help,h", po::bool_switch(&options.help), "show this help")
        ("version,V", po::bool_switch(&options.version), "show the version");
    // clang-format on
    po::options_description hidden;
    hidden.add_options()("pattern", po::value(&options.patterns)->multitoken());
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("pattern", -1);
    po::variables_map values;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), values);
    po::notify(values);
    if (values.count("count")) options.count = values["count"].as<std::uint64_t>();
    if (values.count("wait")) options.wait_s = values["wait"].as<double>();
    std::ostringstream text;
    text << visible;
    options.help_text = text.str();
    return options;
}

[[nodiscard]] aegis::Result<void> check(const Options& options) {
    if (options.patterns.empty())
        return aegis::make_error(ExitCode::usage, "a channel pattern is required (see {} --help)", kTool);
    if (options.count && *options.count == 0) return aegis::make_error(ExitCode::usage, "-C needs a positive count");
    if (options.wait_s && !(*options.wait_s > 0))
        return aegis::make_error(ExitCode::usage, "-W needs a positive number of seconds");
    for (const auto& pattern : options.patterns) {
        if (auto valid = aegis::channel::validate_pattern(pattern); !valid) return valid;
    }
    return {};
}

[[nodiscard]] aegis::sub::Format format_of(const Options& options) {
    if (options.json) return aegis::sub::Format::json;
    return options.verbose ? aegis::sub::Format::raw_with_channel : aegis::sub::Format::raw;
}

int receive(ipc::Client& client, const Options& options, const ipc::Deadline& deadline) {
    const auto format = format_of(options);
    std::uint64_t received = 0;
    while (!options.count || received < *options.count) {
        auto next = client.next_message(deadline);
        if (!next) return aegis::cli::report(kTool, next.error());
        if (!next->has_value()) {
            if (options.count) {
                return aegis::cli::report(kTool, aegis::make_error(ExitCode::timeout, "{} of {} messages within {:g}s",
                                                                   received, *options.count, *options.wait_s));
            }
            if (received == 0) {
                return aegis::cli::report(
                    kTool, aegis::make_error(ExitCode::timeout, "no message within {:g}s", *options.wait_s));
            }
            return 0;
        }
        if (!aegis::sub::write_out(stdout, aegis::sub::render(**next, format))) return 0;  // reader gone: quietly done
        ++received;
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
        fmt::print("{}\n", aegis::cli::version_line(kTool));
        return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as a failed write, handled quietly
    if (auto valid = check(options); !valid) return aegis::cli::report(kTool, valid.error());

    std::optional<std::chrono::milliseconds> wait;
    if (options.wait_s) wait = std::chrono::milliseconds(static_cast<long long>(*options.wait_s * 1000));
    const auto deadline = ipc::deadline_after(wait);
    const auto connect_deadline = deadline ? deadline : ipc::deadline_after(std::chrono::seconds(30));
    auto client = ipc::Client::connect(ipc::resolve_socket_path(options.socket), kTool, connect_deadline);
    if (!client) return aegis::cli::report(kTool, client.error());
    auto subscribed = client->subscribe(ipc::SubscribeRequest{options.patterns}, deadline);
    if (!subscribed) return aegis::cli::report(kTool, subscribed.error());
    return receive(*client, options, deadline);
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
