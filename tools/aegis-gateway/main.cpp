// aegis-gateway: the backend hub. Parses options, runs lib/gateway, maps the result to an exit code.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/choice_option.h"
#include "cli/config_file.h"
#include "cli/number_option.h"
#include "cli/tool.h"
#include "core/log_output.h"
#include "gateway/config_check.h"
#include "gateway/gateway.h"

namespace po = boost::program_options;

namespace {

constexpr std::string_view kTool = "aegis-gateway";

// How log lines look (--log-level, --log-format, journald); set once the options are read.
aegis::log::Settings log_settings{std::string(kTool)};

// "2024-05-01T12:00:00.123Z aegis-gateway: <line>" on stderr, flushed per event.
void log_line(std::string_view line) {
    aegis::log::write_line(log_settings, line);
}

constexpr std::string_view kDefaultConfig = "/etc/aegis/gateway.conf";

// A bad configuration stops the start (exit 6): its first problem on one line, or, for
// --check-config, every problem on a line of its own.
int report_problems(const std::vector<std::string>& problems, bool every = false) {
    if (every) {
        for (const auto& problem : problems) fmt::print(stderr, "{}: error: {}\n", kTool, problem);
        return aegis::to_int(aegis::ExitCode::bad_input);
    }
    auto error = aegis::make_error(aegis::ExitCode::bad_input, "{}", problems.front());
    if (problems.size() > 1)
        error.message += fmt::format(" (and {} more problems: see {} --check-config)", problems.size() - 1, kTool);
    return aegis::cli::report(kTool, error);
}

void describe_options(aegis::cli::CommandLine& line, aegis::gateway::GatewayOptions& options, std::string& identity,
                      std::string& authorized, std::string& state_dir, std::chrono::milliseconds& inbox_age,
                      std::uint64_t& replay_rate) {
    using std::chrono::seconds;
    namespace cli = aegis::cli;
    // clang-format off
    line.add_options()
        ("listen", po::value(&options.listen)->value_name("HOST:PORT")->default_value(options.listen),
         "address for agents and backends (port 0 picks a free one)")
        ("identity", po::value(&identity)->value_name("KEY")->required(), "the gateway's secret key file")
        ("authorized", po::value(&authorized)->value_name("FILE")->required(), "authorized-keys file (re-read on SIGHUP)")
        ("revoked", po::value<std::string>()->value_name("FILE")->notifier([&options](const std::string& file) { options.revoked_file = file; }),
         "keys and certificate serials to refuse (re-read on SIGHUP)")
        ("state-dir", po::value(&state_dir)->value_name("DIR")->required(), "state directory (created 0700)")
        ("redis", po::value(&options.redis)->value_name("URL"),
         "keep the state in Redis at redis://HOST:PORT[/DB], shared by the gateways of a cluster")
        ("redis-sentinel", po::value(&options.redis_sentinel)->value_name("HOST:PORT,..."),
         "keep the state in the Redis master these sentinels name, following its failovers (instead of --redis)")
        ("redis-master", po::value(&options.redis_master)->value_name("NAME"),
         "with --redis-sentinel: the name of the master the sentinels monitor")
        ("redis-db", cli::whole_number(&options.redis_db, 0, 65'535)->value_name("N"),
         "with --redis-sentinel: the database number (0-65535, default 0)")
        ("redis-wait-replicas", cli::whole_number(&options.redis_wait_replicas, 0, 64)->value_name("N"),
         "with --redis or --redis-sentinel: acknowledge a publish once N replicas have it (WAIT; 0-64, default 0)")
        ("redis-wait-timeout", cli::whole_number(&options.redis_wait_timeout_ms, 1, 1'500)->value_name("MS"),
         "how long WAIT waits for the replicas before the publish fails (1-1500, default 500)")
        ("admin", po::value(&options.admin)->value_name("HOST:PORT"), "serve GET /metrics and /healthz here")
        ("channel-controls", po::value<std::string>()->value_name("FILE"),
         "disabled channel patterns (default DIR/channel-controls; re-read on SIGHUP)")
        ("tls-cert", po::value(&options.tls_cert_file)->value_name("FILE"), "TLS certificate chain (PEM): wss://")
        ("tls-key", po::value(&options.tls_key_file)->value_name("FILE"), "TLS private key (PEM)")
        ("max-sessions", cli::whole_number(&options.max_sessions, 1, 1'000'000)->value_name("N")->default_value(options.max_sessions),
         "authenticated sessions at most (1-1000000); more are refused busy")
        ("max-message-bytes", cli::whole_number(&options.max_message_bytes, 1'024, aegis::protocol::kMaxBatchBytes)->value_name("N")->default_value(options.max_message_bytes),
         "largest published batch accepted (1024-17825792)")
        ("verify-signatures", po::bool_switch(&options.verify_signatures),
         "verify the origin signature of each published batch and refuse a bad one (receivers always verify)")
        ("handshake-timeout", cli::duration_seconds(&options.handshake_timeout, seconds(1), seconds(300))->value_name("SECS"),
         "time a client has to finish the handshake (1-300)")
        ("clock-skew", cli::duration_seconds(&options.clock_skew, seconds(1), seconds(86'400))->value_name("SECS"),
         "accepted difference between the client's clock and ours (1-86400)")
        ("inbox-max-messages", cli::whole_number(&options.inbox_max_messages, 1, 1'000'000'000)->value_name("N")->default_value(options.inbox_max_messages),
         "messages stored per identity at most (1-1000000000); past it the oldest are dropped")
        ("inbox-max-age", cli::duration_seconds(&inbox_age, seconds(1), seconds(31'536'000))->value_name("SECS"),
         "stored messages and session tokens expire after this (1-31536000)")
        ("replay-window", cli::whole_number(&options.replay_window, 1, 65'536)->value_name("N")->default_value(options.replay_window),
         "deliveries in flight per session (1-65536; the next goes out as acks come)")
        ("replay-rate", cli::whole_number(&replay_rate, 0, 1'000'000)->value_name("N")->default_value(replay_rate),
         "deliveries per second per session at most (0-1000000; 0: no limit)")
        ("log-level", aegis::cli::one_of(nullptr, {"error", "warn", "info", "debug"})->value_name("LEVEL"), "log error, warn, info (default) or debug lines and the more important ones")
        ("log-format", aegis::cli::one_of(nullptr, {"text", "json"})->value_name("FORMAT"), "text (default; under journald with priority prefixes) or json, one object a line")
        ("config", po::value<std::string>()->value_name("FILE"), "read options from FILE, 'name = value' lines (default: /etc/aegis/gateway.conf when it exists); the command line wins")
        ("check-config", "read the configuration, key, authorized file and TLS files, report every problem and exit (0: fine, 6: problems)");
    // clang-format on
    line.help_and_version({"help,h", "show this help and exit", "version,V", "show the version and exit"});
}

int run(int argc, char** argv) {
    aegis::gateway::GatewayOptions options;
    std::string identity, authorized, state_dir;
    std::uint64_t replay_rate = options.replay_rate;
    std::chrono::milliseconds inbox_age = options.inbox_max_age;
    aegis::cli::CommandLine line("Options");
    describe_options(line, options, identity, authorized, state_dir, inbox_age, replay_rate);
    auto& given = line.store(argc, argv);
    auto& common = line.common;
    common.help_text =
        "Usage: aegis-gateway --identity KEY --authorized FILE --state-dir DIR [options]\n"
        "The Aegis backend hub: authenticates agents and backends, enforces channel access, routes.\n\n" +
        common.help_text +
        "\nSignals: SIGHUP re-reads the authorized file and the channel controls; SIGTERM/SIGINT shut "
        "down.\n";
    if (aegis::cli::print_help_or_version(kTool, common)) return 0;
    const bool check = given.count("check-config") > 0;
    std::vector<std::string> problems;
    if (const auto file = aegis::cli::config_file_to_read(
            given.count("config") ? given["config"].as<std::string>() : "", kDefaultConfig)) {
        problems = aegis::cli::store_config_file(
            *file, aegis::cli::file_options(line.all(), {"config", "check-config", "help", "version"}), given);
    }
    if (!problems.empty() && !check) return report_problems(problems);
    if (check) {
        // What is missing is reported by the check itself: store every value given, as notify
        // would once nothing required is missing.
        for (const auto& [name, value] : given) {
            if (const auto* option = line.all().find_nothrow(name, false)) option->semantic()->notify(value.value());
        }
    } else {
        line.notify();
    }
    // one_of() let only these words through.
    if (given.count("log-level"))
        log_settings.level = aegis::log::parse_level(given["log-level"].as<std::string>()).value_or(log_settings.level);
    if (given.count("log-format")) {
        log_settings.format =
            aegis::log::parse_format(given["log-format"].as<std::string>()).value_or(log_settings.format);
    }
    log_settings.journal = aegis::log::stderr_is_journal();
    options.identity_file = identity;
    options.authorized_file = authorized;
    options.state_dir = state_dir;
    if (given.count("channel-controls")) options.channel_controls_file = given["channel-controls"].as<std::string>();
    options.inbox_max_age = std::chrono::ceil<std::chrono::seconds>(inbox_age);
    options.replay_rate = static_cast<std::uint32_t>(replay_rate);

    if (check) {
        std::vector<std::string> warnings;
        std::optional<std::vector<std::string>> changes;
        for (auto& problem : aegis::gateway::check_gateway_config(options, warnings, changes))
            problems.push_back(problem);
        for (const auto& warning : warnings) fmt::print(stderr, "{}: warning: {}\n", kTool, warning);
        if (!problems.empty()) return report_problems(problems, true);
        fmt::print("{}: the configuration is fine\n", kTool);
        if (changes && changes->empty()) fmt::print("{}: a reload would change nothing\n", kTool);
        if (changes && !changes->empty()) {
            fmt::print("{}: a reload would:\n", kTool);
            for (const auto& change : *changes) fmt::print("  {}\n", change);
        }
        return 0;
    }

    auto outcome = aegis::gateway::run_gateway(options, log_line);
    if (!outcome) return aegis::cli::report(kTool, outcome.error());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
