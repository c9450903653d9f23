#include "options.h"

#include <boost/program_options.hpp>
#include <sstream>

#include "cli/choice_option.h"
#include "cli/config_file.h"
#include "cli/number_option.h"
#include "cli/tool.h"

namespace aegis::connect {

namespace po = boost::program_options;

Options parse_options(int argc, char** argv) {
    Options options;
    auto& c = options.connect;
    std::string identity;
    std::string config;
    std::string log_level;
    std::string log_format;
    std::vector<std::string> urls;
    cli::CommandLine line(
        "Usage: aegis-connect URL [URL...] --backend-key KEY|--backend-ca FILE|--accept-new [options]\n"
        "       aegis-connect --stop [--socket PATH]\n"
        "       aegis-connect --reconnect [--socket PATH]\n"
        "       aegis-connect --check URL [--backend-key KEY|--backend-ca FILE] [--json]\n\n"
        "Starts the Aegis broker: one authenticated session to the gateway at URL\n"
        "(ws://HOST:PORT[/PATH] or wss://...) and the local socket for aegis-send and aegis-sub.\n"
        "Several URLs name the gateways of one cluster, tried in a random order.\n\n"
        "Options");
    // clang-format off
    line.add_options()
        ("identity,i", po::value(&identity)->value_name("KEY"), "secret key file (default: ~/.config/aegis/id_ed25519)")
        ("backend-key", po::value(&c.backend_keys)->value_name("FILE_OR_KEY"), "pin the gateway's key: key file, 'aegis-ed25519 ...' line or base64; repeat to accept several (a key rollover)")
        ("accept-new", po::bool_switch(&c.accept_new), "trust an unknown gateway on first use and record it in STATE_DIR/known_backends")
        ("backend-ca", po::value(&c.backend_ca)->value_name("FILE"), "trust any gateway with a certificate from an operator CA whose key is in FILE");
    line.socket(&c.socket, "local socket");
    line.add_options()
        ("socket-group", po::value(&c.socket_group)->value_name("GROUP"), "open the socket (0660, directory 0750) to the members of GROUP")
        ("state-dir", po::value(&c.state_dir)->value_name("DIR"), "state directory (default: $XDG_STATE_HOME/aegis)")
        ("foreground", po::bool_switch(&options.foreground), "do not detach; log to stderr; tell systemd when ready (Type=notify)")
        ("no-wait", po::bool_switch(&c.no_wait), "return once the local socket is up; connect in the background")
        ("timeout", cli::seconds(&c.timeout_s, 0.1, 86'400)->value_name("SECS"), "give up when not connected within SECS (0.1-86400, default: 30)")
        ("backoff-min", cli::seconds(&c.backoff_min_s, 0.01, 3'600)->value_name("SECS"), "first reconnect delay (0.01-3600, default: 5)")
        ("backoff-max", cli::seconds(&c.backoff_max_s, 0.01, 86'400)->value_name("SECS"), "longest reconnect delay (0.01-86400, default: 60)")
        ("heartbeat", cli::seconds(&c.heartbeat_s, 0, 86'400)->value_name("SECS"), "application heartbeat interval, 0 to disable (0-86400, default: 30)")
        ("proxy", po::value(&c.proxy)->value_name("URL"), "HTTP CONNECT proxy (http://HOST:PORT)")
        ("ca-file", po::value(&c.ca_file)->value_name("FILE"), "for wss://, also trust the CA certificates of this PEM file")
        ("queue-max-messages", cli::whole_number(&c.queue_max_messages, 1, 1'000'000'000)->value_name("N"), "refuse publishes while N messages are queued (1-1000000000, default: 1000000)")
        ("queue-max-bytes", cli::whole_number(&c.queue_max_bytes, 1'024, 1ULL << 40)->value_name("N"), "refuse publishes while N payload bytes are queued (1024-1099511627776, default: 1073741824)")
        ("cursor-max-messages", cli::whole_number(&c.cursor_max_messages, 1, 1'000'000'000)->value_name("N"), "a durable subscription's inbox keeps at most N messages, dropping the oldest (1-1000000000, default: 100000)")
        ("max-attempts", cli::whole_number(&c.max_attempts, 0, 1'000'000)->value_name("N"), "a message the gateway refuses for a passing reason N times becomes a dead letter (0-1000000, default: 0: never)")
        ("batch-format", cli::whole_number(&c.batch_format, 1, 2)->value_name("N"), "sign batches in format 1 (default; every version reads it) or 2 (signing costs less; only when the gateways and every receiving broker read it: versions with this option)")
        ("log", po::value(&c.log_file)->value_name("FILE"), "log file when detached (default: STATE_DIR/broker.log)")
        ("log-level", cli::one_of(&log_level, {"error", "warn", "info", "debug"})->value_name("LEVEL"), "log error, warn, info (default) or debug lines and the more important ones")
        ("log-format", cli::one_of(&log_format, {"text", "json"})->value_name("FORMAT"), "text (default; under journald with priority prefixes) or json, one object a line")
        ("config", po::value(&config)->value_name("FILE"), "read options from FILE, 'name = value' lines (default: /etc/aegis/connect.conf when it exists); the command line wins")
        ("check-config", po::bool_switch(&options.check_config), "read the configuration, keys and files, report every problem and exit (0: fine, 6: problems)")
        ("stop", po::bool_switch(&options.stop), "stop the broker on the socket and wait for it to exit")
        ("reconnect", po::bool_switch(&options.reconnect), "ask the broker on the socket to connect now, cutting its backoff short")
        ("check", po::bool_switch(&options.check), "test the path to the gateway at URL step by step (DNS, TCP, proxy, TLS, upgrade, handshake, key, identity) and exit; starts no broker, writes nothing")
        ("json", po::bool_switch(&options.json), "with --check: print one JSON object");
    // clang-format on
    line.help_and_version();
    line.operands("url", po::value(&urls), -1);
    auto& values = line.store(argc, argv);
    if (!line.common.help) {
        // The command line is stored first: what it gives wins over the file.
        if (const auto file = cli::config_file_to_read(values.count("config") ? values["config"].as<std::string>() : "",
                                                       std::string(kDefaultConfig))) {
            options.config_problems = cli::store_config_file(
                *file,
                cli::file_options(line.all(), {"config", "check-config", "stop", "check", "json", "help", "version"}),
                values);
        }
    }
    line.notify();
    options.common = line.common;
    if (!identity.empty()) c.identity = identity;
    // The file gives several URLs on its one url line, separated by spaces (a URL has none).
    for (const auto& given : urls) {
        std::istringstream words(given);
        for (std::string word; words >> word;) {
            if (c.url.empty()) {
                c.url = word;
            } else {
                c.more_urls.push_back(word);
            }
        }
    }
    // one_of() let only these words through.
    options.log_level = log::parse_level(log_level).value_or(log::Level::info);
    options.log_format = log::parse_format(log_format).value_or(log::Format::text);
    return options;
}

}  // namespace aegis::connect
