#include "options.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <vector>

#include "channel/channel.h"
#include "cli/duration.h"
#include "cli/number_option.h"
#include "cli/parse_and_check.h"
#include "cli/request_reply.h"
#include "cli/tool.h"

namespace aegis::send {

namespace po = boost::program_options;
using std::chrono::hours;
using std::chrono::milliseconds;

namespace {

constexpr const char* kUsage =
    "Usage: aegis-send [options] CHANNEL [-m TEXT | -f FILE]\n\n"
    "Publishes messages to CHANNEL through the local broker (aegis-connect): TEXT, the bytes\n"
    "of FILE, all of standard input, or one message per line (-l) or NUL-terminated record (-0).\n\n"
    "Options";

struct Raw {
    std::string priority = "normal";
    std::optional<std::string> ttl;
    std::vector<std::string> headers;
    bool lines = false;
    bool nul = false;
};

[[nodiscard]] Result<void> check_and_fill(Options& options, const Raw& raw) {
    auto& request = options.request;
    if (request.channel.empty()) return cli::usage_error("aegis-send", "a channel is required");
    if (options.message && options.file) return make_error(ExitCode::usage, "-m and -f cannot be combined");
    if (raw.lines && raw.nul) return make_error(ExitCode::usage, "-l and -0 cannot be combined");
    if (options.message && (raw.lines || raw.nul))
        return make_error(ExitCode::usage, "-l and -0 read a stream, not -m");
    if (options.is_request && (raw.lines || raw.nul || options.count != 1)) {
        return make_error(ExitCode::usage, "--request sends one message (no -l, -0 or -n)");
    }
    if (options.print_id && options.json)
        return make_error(ExitCode::usage, "--print-id and --json cannot be combined");
    if (!options.is_request && !options.reply_to.empty())
        return make_error(ExitCode::usage, "--reply-to needs --request");
    if (!options.message && !options.file && ::isatty(STDIN_FILENO)) {
        return make_error(ExitCode::usage, "no payload: give -m TEXT or -f FILE, or pipe it into standard input");
    }
    if (auto valid = channel::validate_name(request.channel); !valid) return valid;
    const auto priority = protocol::parse_priority(raw.priority);
    if (!priority) {
        return make_error(ExitCode::usage, "unknown priority '{}' (critical, high, normal or low)", raw.priority);
    }
    request.priority = *priority;
    if (raw.ttl) {
        auto ttl = cli::parse_duration(*raw.ttl, "--ttl", milliseconds(1), hours(720));
        if (!ttl) return ttl.take_error();
        request.ttl_ms = static_cast<std::uint64_t>(ttl->count());
    }
    auto timeout = options.common.timeout_or_default();
    if (!timeout) return timeout.take_error();
    options.timeout = *timeout;
    for (const auto& text : raw.headers) {
        auto header = cli::parse_header_option(text);
        if (!header) return header.take_error();
        request.headers.push_back(std::move(*header));
    }
    options.split = raw.lines ? cli::Split::lines : raw.nul ? cli::Split::nul : cli::Split::whole;
    if (options.is_request) {
        if (options.reply_to.empty()) {
            auto channel = cli::default_reply_channel(request.channel);
            if (!channel) return channel.take_error();
            options.reply_to = std::move(*channel);
        }
        if (auto valid = channel::validate_name(options.reply_to); !valid) return valid;
        request.kind = protocol::Kind::request;
        request.headers.emplace_back(std::string(cli::kReplyToHeader), options.reply_to);
    }
    return {};
}

// The options and operands, into the two structs.
void describe(cli::CommandLine& line, Options& options, Raw& raw) {
    // clang-format off
    line.add_options()
        ("message,m", cli::optional_text(&options.message)->value_name("TEXT"), "the payload, as given (no newline added)")
        ("file,f", cli::optional_text(&options.file)->value_name("FILE"), "read the payload from FILE ('-': standard input)")
        ("lines,l", po::bool_switch(&raw.lines), "one message per line of the input (streamed)")
        ("null,0", po::bool_switch(&raw.nul), "one message per NUL-terminated record of the input")
        ("count,n", cli::whole_number(&options.count, 1, 1'000'000)->value_name("N"), "send each message N times (1-1000000)")
        ("priority,p", po::value(&raw.priority)->value_name("LEVEL"), "critical, high, normal (default) or low")
        ("ttl", cli::optional_text(&raw.ttl)->value_name("DURATION"), "drop the message if not delivered within DURATION (1ms-720h)")
        ("header,H", po::value(&raw.headers)->value_name("KEY=VALUE"), "add a header (repeatable)")
        ("print-id", po::bool_switch(&options.print_id), "print each message's id")
        ("json", po::bool_switch(&options.json), "print {\"id\":..,\"channel\":..} per message")
        ("wait-ack", po::bool_switch(&options.request.wait_ack), "return only once the gateway has stored each message")
        ("request", po::bool_switch(&options.is_request), "send a request and print the reply")
        ("reply-to", po::value(&options.reply_to)->value_name("CHANNEL"), "the channel replies come on (default: by convention)")
        ("replies", cli::whole_number(&options.replies, 1, 10'000)->value_name("N"), "with --request: wait for N replies (1-10000, default: 1)");
    // clang-format on
    line.timeout(milliseconds(30'000), hours(24)).socket().help_and_version();
    line.operands("channel", po::value(&options.request.channel), 1);
}

}  // namespace

Result<Options> parse_options(int argc, char** argv) {
    return cli::parse_and_check<Options, Raw>(argc, argv, kUsage, &describe, &check_and_fill);
}

}  // namespace aegis::send
