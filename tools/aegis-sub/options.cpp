#include "options.h"

#include <boost/program_options.hpp>

#include "channel/channel.h"
#include "cli/duration.h"
#include "cli/number_option.h"
#include "cli/parse_and_check.h"
#include "cli/tool.h"
#include "ipc/messages.h"

namespace aegis::sub {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: aegis-sub [options] PATTERN...\n\n"
    "Subscribes to channel patterns through the local broker (aegis-connect) and prints\n"
    "each message's payload on its own line. '*' matches one token, '>' the rest.\n\n"
    "Options";

struct Raw {
    std::optional<std::string> wait;
    std::optional<std::string> format;
    std::optional<std::string> exec_timeout;
    bool verbose = false;
    bool json = false;
    bool nul = false;
};

[[nodiscard]] Result<void> check_and_fill(Options& options, const Raw& raw) {
    if (options.patterns.empty()) return cli::usage_error("aegis-sub", "a channel pattern is required");
    if (options.receive.drain && options.receive.durable.empty())
        return make_error(ExitCode::usage, "--drain needs --durable NAME");
    if (options.reset && options.receive.durable.empty())
        return make_error(ExitCode::usage, "--reset needs --durable NAME");
    if (!options.receive.durable.empty() && !ipc::valid_cursor_name(options.receive.durable)) {
        return make_error(ExitCode::usage, "--durable needs a name of 1 to {} characters of [A-Za-z0-9_.-], not '{}'",
                          ipc::kMaxCursorName, options.receive.durable);
    }
    if ((raw.json ? 1 : 0) + (raw.format ? 1 : 0) + (raw.verbose ? 1 : 0) > 1) {
        return make_error(ExitCode::usage, "-v, --json and -F cannot be combined");
    }
    if (!options.receive.exec.empty() && (raw.json || raw.format || raw.verbose || raw.nul)) {
        return make_error(ExitCode::usage, "--exec prints the command's output, not -v, --json, -F or -0");
    }
    if (raw.exec_timeout) {
        if (options.receive.exec.empty()) return make_error(ExitCode::usage, "--exec-timeout needs --exec");
        auto timeout = cli::parse_duration(*raw.exec_timeout, "--exec-timeout", std::chrono::milliseconds(0),
                                           std::chrono::hours(24));
        if (!timeout) return timeout.take_error();
        options.receive.exec_timeout = *timeout;
    }
    if (raw.wait) {
        auto wait = cli::parse_duration(*raw.wait, "-W", std::chrono::milliseconds(1), std::chrono::hours(720));
        if (!wait) return wait.take_error();
        options.receive.wait = *wait;
    }
    if (raw.format) {
        if (auto valid = cli::validate_format(*raw.format); !valid) return valid;
        options.receive.style.style = cli::Style::format;
        options.receive.style.format = *raw.format;
    }
    if (raw.json) options.receive.style.style = cli::Style::json;
    if (raw.verbose) options.receive.style.style = cli::Style::channel_and_payload;
    if (raw.nul) options.receive.style.terminator = '\0';
    for (const auto& pattern : options.patterns) {
        if (auto valid = channel::validate_pattern(pattern); !valid) return valid;
    }
    return {};
}

// The options and operands, into the two structs.
void describe(cli::CommandLine& line, Options& options, Raw& raw) {
    // clang-format off
    line.add_options()
        ("count,C", cli::whole_number(nullptr, 1, 1'000'000'000)->value_name("N")->notifier([&options](std::uint64_t n) { options.receive.count = n; }), "exit 0 after N messages (1-1000000000)")
        ("wait,W", cli::optional_text(&raw.wait)->value_name("SECS"), "stop after SECS (or 250ms, 5m; 1ms-720h); exit 5 if fewer than N (or no) messages came")
        ("verbose,v", po::bool_switch(&raw.verbose), "prefix each payload with its channel and a space")
        ("json", po::bool_switch(&raw.json), "one JSON object per message: every envelope field and the payload")
        ("format,F", cli::optional_text(&raw.format)->value_name("FORMAT"), "print FORMAT per message (%c %p %i %o %f %t %x %l %k %%, \\n \\t \\0)")
        ("null,0", po::bool_switch(&raw.nul), "end each message with NUL instead of a newline")
        ("from", po::value(&options.receive.from)->value_name("FINGERPRINT"), "only messages signed by this identity")
        ("durable", po::value(&options.receive.durable)->value_name("NAME"), "durable subscription NAME: messages wait in the broker while away")
        ("drain", po::bool_switch(&options.receive.drain), "with --durable: exit once the stored backlog has been printed")
        ("reset", po::bool_switch(&options.reset), "with --durable: replace the subscription's stored patterns")
        ("exec", po::value(&options.receive.exec)->value_name("CMD"), "run CMD per message (payload on stdin); its output answers requests")
        ("exec-timeout", cli::optional_text(&raw.exec_timeout)->value_name("DURATION"), "end a command's process group after DURATION (0-24h, 0: never; default: 30s)")
        ("jobs", cli::whole_number(&options.receive.jobs, 1, 256)->value_name("N"), "run up to N commands at once (1-256, default: 1)");
    // clang-format on
    line.socket().help_and_version();
    line.operands("pattern", po::value(&options.patterns)->multitoken(), -1);
}

}  // namespace

Result<Options> parse_options(int argc, char** argv) {
    return cli::parse_and_check<Options, Raw>(argc, argv, kUsage, &describe, &check_and_fill);
}

}  // namespace aegis::sub
