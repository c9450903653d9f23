// aegis-queue: look at and manage the local broker's outbound queue (waiting, in-flight and
// dead messages) through the queue.* operations of the local socket.

#include <fmt/format.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>

#include "cli/duration.h"
#include "cli/number_option.h"
#include "cli/queue_report.h"
#include "cli/tool.h"
#include "core/clock.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "protocol/reason.h"

namespace {

namespace po = boost::program_options;
namespace ipc = aegis::ipc;
namespace cli = aegis::cli;
using aegis::ExitCode;
using nlohmann::json;

constexpr std::string_view kTool = "aegis-queue";

struct Options {
    cli::CommonOptions common;  // --socket, --timeout, --help, --version
    std::string command;
    std::vector<std::string> args;
    std::string state = "all";
    std::uint64_t limit = 100;
    bool dead = false;
    bool all = false;
    bool yes = false;
    bool json = false;
    std::string ttl;         // retry: a fresh TTL for expired messages
    bool ttl_given = false;  // even an empty one, which is then refused
};

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

[[nodiscard]] aegis::Error usage(std::string_view what) {
    return cli::usage_error(kTool, what);
}

// The request for a command; the purge confirmation is asked by the caller.
[[nodiscard]] aegis::Result<json> request_for(const Options& o) {
    const auto& c = o.command;
    if (c == "cursor-rm") {
        if (o.args.size() != 1) return usage("cursor-rm needs one durable subscription NAME");
        return ipc::to_header(ipc::CursorDeleteRequest{o.args[0]});
    }
    const std::size_t want_args = (c == "show" || c == "drop" || (c == "retry" && !o.dead)) ? 1 : 0;
    if (o.args.size() != want_args) {
        return usage(want_args ? fmt::format("{} needs one message ID", c) : fmt::format("{} takes no argument", c));
    }
    if (o.ttl_given && c != "retry") return usage("--ttl goes with retry");
    if (c == "cursors") return ipc::to_header(ipc::CursorListRequest{});
    if (c == "ls") {
        if (o.state != "waiting" && o.state != "in_flight" && o.state != "dead" && o.state != "all") {
            return usage(fmt::format("unknown state '{}' (waiting, in_flight, dead or all)", o.state));
        }
        return json{{"op", "queue.list"}, {"state", o.state}, {"limit", o.limit}};
    }
    if (c == "show" || c == "drop" || c == "retry") {
        if (!o.args.empty() && !ipc::message_id_from_hex(o.args[0])) {
            return aegis::make_error(ExitCode::bad_input, "'{}' is not a message id (32 hex digits)", o.args[0]);
        }
        json request = c == "retry" && o.dead ? json{{"op", "queue.retry"}, {"dead", true}}
                                              : json{{"op", "queue." + c}, {"message_id", o.args[0]}};
        if (o.ttl_given) {
            auto ttl = cli::parse_duration(o.ttl, "--ttl", std::chrono::milliseconds(1), std::chrono::hours(720));
            if (!ttl) return ttl.take_error();
            request["ttl_ms"] = static_cast<std::uint64_t>(ttl->count());
        }
        return request;
    }
    if (c == "purge") {
        if (o.dead == o.all) return usage("purge needs --dead or --all");
        return o.dead ? json{{"op", "queue.purge"}, {"dead", true}} : json{{"op", "queue.purge"}, {"all", true}};
    }
    if (c == "stats") return json{{"op", "queue.stats"}};
    if (c.empty()) return usage("a command is required");
    return usage(fmt::format("unknown command '{}'", c));
}

// Asks on a terminal; refuses without one unless --yes.
[[nodiscard]] aegis::Result<bool> confirm_purge(ipc::Client& client, const Options& o, const ipc::Deadline& deadline) {
    if (o.yes) return true;
    if (::isatty(STDIN_FILENO) == 0) return usage("purge asks for confirmation; give --yes when not on a terminal");
    auto stats = client.call(json{{"op", "queue.stats"}}, {}, deadline);
    if (!stats) return stats.take_error();
    const auto& s = stats->header.value("stats", json::object());
    const auto count =
        o.dead ? s.value("dead", 0ULL) : s.value("waiting", 0ULL) + s.value("in_flight", 0ULL) + s.value("dead", 0ULL);
    fmt::print(stderr, "purge {} messages? [y/N] ", count);
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes";
}

void print_answer(const Options& o, const ipc::Frame& answer) {
    const auto& h = answer.header;
    const auto now = aegis::unix_time_ms();
    if (o.command == "show") {
        const auto message = h.value("message", json::object());
        if (o.json) {
            fmt::print("{}\n", cli::queue_message_json(message, answer.payload).dump(2));
        } else {
            fmt::print("{}", cli::queue_message_text(message, answer.payload, now));
        }
        return;
    }
    json body = h;
    body.erase("id");
    body.erase("ok");
    if (o.command == "cursors") {
        const auto cursors = body.value("cursors", json::array());
        fmt::print("{}", o.json ? cursors.dump(2) + "\n" : cli::cursor_table(cursors, now));
        return;
    }
    if (o.command == "cursor-rm" && !o.json) {
        fmt::print("removed durable subscription {}\n", o.args[0]);
        return;
    }
    if (o.json) {
        fmt::print("{}\n", (o.command == "ls" ? body.value("messages", json::array()) : body).dump(2));
    } else if (o.command == "ls") {
        fmt::print("{}", cli::queue_table(body.value("messages", json::array()), now));
    } else if (o.command == "stats") {
        fmt::print("{}", cli::queue_stats_text(body.value("stats", json::object()), now));
    } else {
        const auto count = body.value("count", 0ULL);
        fmt::print("{} {} message{}\n",
                   o.command == "retry"  ? "retrying"
                   : o.command == "drop" ? "dropped"
                                         : "purged",
                   count, count == 1 ? "" : "s");
        if (const auto expired = body.value("expired", 0ULL); expired > 0) {
            fmt::print("{} expired message{} not retried: {} would expire again at once (give --ttl DURATION)\n",
                       expired, expired == 1 ? "" : "s", expired == 1 ? "it" : "they");
        }
    }
}

int run(int argc, char** argv) {
    const auto options = parse_options(argc, argv);
    if (cli::print_help_or_version(kTool, options.common)) return 0;
    auto timeout = options.common.timeout_or_default();
    if (!timeout) return cli::report(kTool, timeout.error());
    auto request = request_for(options);
    if (!request) return cli::report(kTool, request.error());
    const auto deadline = ipc::deadline_after(*timeout);
    auto client = ipc::Client::connect(ipc::find_broker_socket(options.common.socket), kTool, deadline);
    if (!client) return cli::report(kTool, client.error());
    if (options.command == "purge") {
        auto confirmed = confirm_purge(*client, options, deadline);
        if (!confirmed) return cli::report(kTool, cli::explain_unsupported(confirmed.take_error(), "queue operations"));
        if (!*confirmed) return cli::report(kTool, aegis::make_error(ExitCode::failure, "not purged"));
    }
    auto answer = client->call(std::move(*request), {}, deadline);
    if (!answer) {
        auto error = answer.take_error();
        if (error.reason == static_cast<std::uint16_t>(aegis::protocol::Reason::expired)) {
            error.message += "; give --ttl DURATION to send it with a fresh TTL";
        }
        return cli::report(kTool, cli::explain_unsupported(std::move(error), options.command.rfind("cursor", 0) == 0
                                                                                 ? "durable subscription listing"
                                                                                 : "queue operations"));
    }
    if (options.command == "cursor-rm" && !answer->header.value("deleted", false)) {
        return cli::report(kTool,
                           aegis::make_error(ExitCode::failure, "no durable subscription named {}", options.args[0]));
    }
    print_answer(options, *answer);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
