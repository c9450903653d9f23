// aegis_rr: request/reply round trips through two brokers and the gateway, timed from one
// long-lived connection to the local socket, so a round trip is measured without the start-up
// of a process per request (scripts/bench.sh compares that case separately).
//
//   aegis_rr reply --socket SOCK [--count N] PATTERN
//       answers every request on PATTERN with its own payload, as aegis-sub --exec cat would
//   aegis_rr request --socket SOCK --channel CHANNEL [--count N] [--warmup W] [--size BYTES]
//       sends W untimed then N timed requests one after another, each waiting for its reply, and
//       prints one JSON object: requests, replies, rr_p50_ms, rr_p99_ms, rr_max_ms

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "cli/request_reply.h"
#include "ipc/client.h"
#include "ipc/messages.h"
#include "latency.h"

namespace {

namespace po = boost::program_options;
using namespace aegis;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string socket;
    std::string channel;
    std::size_t count = 500;
    std::size_t warmup = 20;
    std::size_t size = 100;
    unsigned timeout_s = 10;
};

int fail(const Error& error) {
    std::cerr << "aegis_rr: error: " << error.message << '\n';
    return to_int(error.exit);
}

int reply(const Options& options) {
    auto client = ipc::Client::connect(options.socket, "aegis_rr", ipc::deadline_after(std::chrono::seconds(10)));
    if (!client) return fail(client.error());
    if (auto subscribed = client->subscribe(ipc::SubscribeRequest{{options.channel}, {}},
                                            ipc::deadline_after(std::chrono::seconds(options.timeout_s)));
        !subscribed)
        return fail(subscribed.error());
    std::cout << "subscribed " << options.channel << std::endl;  // the caller waits for this line
    for (std::size_t answered = 0; options.count == 0 || answered < options.count;) {
        auto next = client->next_message(std::nullopt);
        if (!next) return fail(next.error());
        if (!next->has_value()) continue;
        const auto& request = **next;
        const auto answer = cli::reply_for(request, 0);
        if (!answer) continue;
        auto sent =
            client->publish(*answer, request.payload, ipc::deadline_after(std::chrono::seconds(options.timeout_s)));
        if (!sent) return fail(sent.error());
        ++answered;
    }
    return 0;
}

int request(const Options& options) {
    auto reply_channel = cli::default_reply_channel(options.channel);
    if (!reply_channel) return fail(reply_channel.error());
    auto client = ipc::Client::connect(options.socket, "aegis_rr", ipc::deadline_after(std::chrono::seconds(10)));
    if (!client) return fail(client.error());
    if (auto subscribed = client->subscribe(ipc::SubscribeRequest{{*reply_channel}, {}},
                                            ipc::deadline_after(std::chrono::seconds(options.timeout_s)));
        !subscribed)
        return fail(subscribed.error());

    ipc::PublishRequest message;
    message.channel = options.channel;
    message.kind = protocol::Kind::request;
    message.headers.emplace_back(std::string(cli::kReplyToHeader), *reply_channel);
    const std::string payload(options.size, 'x');

    bench::Latencies round_trips;
    std::size_t replies = 0;
    for (std::size_t i = 0; i < options.warmup + options.count; ++i) {
        const auto deadline = ipc::deadline_after(std::chrono::seconds(options.timeout_s));
        const auto started = Clock::now();
        auto sent = client->publish(message, as_bytes(payload), deadline);
        if (!sent) return fail(sent.error());
        const auto id = ipc::message_id_from_hex(*sent);
        if (!id) return fail(make_error(ExitCode::failure, "the broker gave no message id"));
        auto got = cli::await_replies(*client, *id, 1, deadline, [](const ipc::DeliveredMessage&) {});
        if (!got) return fail(got.error());
        if (*got == 0) {
            std::cerr << fmt::format("aegis_rr: error: no reply to request {} within {} s\n", i + 1, options.timeout_s);
            break;
        }
        if (i < options.warmup) continue;
        ++replies;
        round_trips.add(std::chrono::duration<double, std::milli>(Clock::now() - started).count());
    }
    std::cout << fmt::format(R"({{"requests": {}, "replies": {}, {}}})", options.count, replies,
                             round_trips.json_members("rr"))
              << std::endl;
    return replies == options.count ? 0 : to_int(ExitCode::timeout);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    std::string command;
    po::options_description described("Options");
    // clang-format off
    described.add_options()
        ("socket", po::value(&options.socket), "the broker's socket")
        ("channel", po::value(&options.channel), "request: the request channel")
        ("count", po::value(&options.count)->default_value(options.count), "timed requests (reply: answers, default no end)")
        ("warmup", po::value(&options.warmup)->default_value(options.warmup), "untimed requests first")
        ("size", po::value(&options.size)->default_value(options.size), "request payload bytes")
        ("timeout", po::value(&options.timeout_s)->default_value(options.timeout_s), "seconds to wait for each reply")
        ("help,h", "show this help");
    // clang-format on
    po::options_description hidden;
    hidden.add_options()("command", po::value(&command))("pattern", po::value<std::string>());
    po::options_description all;
    all.add(described).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1).add("pattern", 1);
    try {
        po::variables_map given;
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), given);
        po::notify(given);
        if (given.count("help")) {
            std::cout << "Usage: aegis_rr reply --socket SOCK [--count N] PATTERN\n"
                         "       aegis_rr request --socket SOCK --channel CHANNEL [options]\n\n"
                      << described;
            return 0;
        }
        if (command == "reply") {
            if (given.count("pattern")) options.channel = given["pattern"].as<std::string>();
            if (given["count"].defaulted()) options.count = 0;  // a replier answers until stopped
        }
    } catch (const po::error& e) {
        std::cerr << "aegis_rr: error: " << e.what() << '\n';
        return 2;
    }
    if (options.socket.empty() || options.channel.empty()) {
        std::cerr << "aegis_rr: error: --socket and a channel (request: --channel, reply: PATTERN) are needed\n";
        return 2;
    }
    if (command == "reply") return reply(options);
    if (command == "request") {
        if (options.count == 0) {
            std::cerr << "aegis_rr: error: --count must be positive\n";
            return 2;
        }
        return request(options);
    }
    std::cerr << "aegis_rr: error: unknown command '" << command << "' (reply or request)\n";
    return 2;
}
