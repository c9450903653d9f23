// aegis-gateway: the backend hub. Parses options, runs lib/gateway, maps the result to an exit code.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>

#include "cli/number_option.h"
#include "cli/tool.h"
#include "gateway/gateway.h"

namespace po = boost::program_options;

namespace {

constexpr std::string_view kTool = "aegis-gateway";

// "2024-05-01T12:00:00.123Z aegis-gateway: <line>" on stderr, flushed per event.
void log_line(std::string_view line) {
    const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const auto millis = now.time_since_epoch().count() % 1000;
    fmt::print(stderr, "{:%Y-%m-%dT%H:%M:%S}.{:03}Z {}: {}\n", std::chrono::time_point_cast<std::chrono::seconds>(now),
               millis, kTool, line);
    std::fflush(stderr);
}

po::options_description describe_options(aegis::gateway::GatewayOptions& options, std::string& identity,
                                         std::string& authorized, std::string& state_dir, std::uint64_t& handshake_secs,
                                         std::uint64_t& skew_secs, std::uint64_t& inbox_age_secs,
                                         std::uint64_t& replay_rate) {
    namespace cli = aegis::cli;
    po::options_description described("Options");
    // clang-format off
    described.add_options()
        ("listen", po::value(&options.listen)->value_name("HOST:PORT")->default_value(options.listen),
         "address for agents and backends (port 0 picks a free one)")
        ("identity", po::value(&identity)->value_name("KEY")->required(), "the gateway's secret key file")
        ("authorized", po::value(&authorized)->value_name("FILE")->required(), "authorized-keys file (re-read on SIGHUP)")
        ("revoked", po::value<std::string>()->value_name("FILE")->notifier([&options](const std::string& file) { options.revoked_file = file; }),
         "keys and certificate serials to refuse (re-read on SIGHUP)")
        ("state-dir", po::value(&state_dir)->value_name("DIR")->required(), "state directory (created 0700)")
        ("admin", po::value(&options.admin)->value_name("HOST:PORT"), "serve GET /metrics and /healthz here")
        ("channel-controls", po::value<std::string>()->value_name("FILE"),
         "disabled channel patterns (default DIR/channel-controls; re-read on SIGHUP)")
        ("tls-cert", po::value(&options.tls_cert_file)->value_name("FILE"), "TLS certificate chain (PEM): wss://")
        ("tls-key", po::value(&options.tls_key_file)->value_name("FILE"), "TLS private key (PEM)")
        ("max-sessions", cli::whole_number(&options.max_sessions, 1, 1'000'000)->value_name("N")->default_value(options.max_sessions),
         "authenticated sessions at most (1-1000000); more are refused busy")
        ("max-message-bytes", cli::whole_number(&options.max_message_bytes, 1'024, aegis::protocol::kMaxBatchBytes)->value_name("N")->default_value(options.max_message_bytes),
         "largest published batch accepted (1024-67108864)")
        ("handshake-timeout", cli::whole_number(&handshake_secs, 1, 300)->value_name("SECS")->default_value(handshake_secs),
         "time a client has to finish the handshake (1-300)")
        ("clock-skew", cli::whole_number(&skew_secs, 1, 86'400)->value_name("SECS")->default_value(skew_secs),
         "accepted difference between the client's clock and ours (1-86400)")
        ("inbox-max-messages", cli::whole_number(&options.inbox_max_messages, 1, 1'000'000'000)->value_name("N")->default_value(options.inbox_max_messages),
         "messages stored per identity at most (1-1000000000); past it the oldest are dropped")
        ("inbox-max-age", cli::whole_number(&inbox_age_secs, 1, 31'536'000)->value_name("SECS")->default_value(inbox_age_secs),
         "stored messages and session tokens expire after this (1-31536000)")
        ("replay-window", cli::whole_number(&options.replay_window, 1, 65'536)->value_name("N")->default_value(options.replay_window),
         "deliveries in flight per session (1-65536; the next goes out as acks come)")
        ("replay-rate", cli::whole_number(&replay_rate, 0, 1'000'000)->value_name("N")->default_value(replay_rate),
         "deliveries per second per session at most (0-1000000; 0: no limit)")
        ("help,h", "show this help and exit")
        ("version,V", "show the version and exit");
    // clang-format on
    return described;
}

int run(int argc, char** argv) {
    aegis::gateway::GatewayOptions options;
    std::string identity, authorized, state_dir;
    std::uint64_t handshake_secs = 10, skew_secs = 120, replay_rate = options.replay_rate;
    std::uint64_t inbox_age_secs = static_cast<std::uint64_t>(options.inbox_max_age.count());
    const auto described = describe_options(options, identity, authorized, state_dir, handshake_secs, skew_secs,
                                            inbox_age_secs, replay_rate);

    po::variables_map given;
    po::store(po::command_line_parser(argc, argv).options(described).run(), given);
    if (given.count("help")) {
        std::cout
            << "Usage: aegis-gateway --identity KEY --authorized FILE --state-dir DIR [options]\n"
               "The Aegis backend hub: authenticates agents and backends, enforces channel access, routes.\n\n"
            << aegis::cli::help_table(described)
            << "\nSignals: SIGHUP re-reads the authorized file and the channel controls; SIGTERM/SIGINT shut down.\n";
        return 0;
    }
    if (given.count("version")) {
        std::cout << aegis::cli::version_line(kTool) << '\n';
        return 0;
    }
    po::notify(given);
    options.identity_file = identity;
    options.authorized_file = authorized;
    options.state_dir = state_dir;
    if (given.count("channel-controls")) options.channel_controls_file = given["channel-controls"].as<std::string>();
    options.handshake_timeout = std::chrono::seconds(handshake_secs);
    options.clock_skew = std::chrono::seconds(skew_secs);
    options.inbox_max_age = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(inbox_age_secs));
    options.replay_rate = static_cast<std::uint32_t>(replay_rate);

    auto outcome = aegis::gateway::run_gateway(options, log_line);
    if (!outcome) return aegis::cli::report(kTool, outcome.error());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
