// aegis-send: publish one message to a channel through the local broker.

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

#include "channel/channel.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"

namespace {

namespace po = boost::program_options;
namespace ipc = aegis::ipc;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-send";

struct Options {
    std::string socket;
    std::string channel;
    std::optional<std::string> message;
    std::optional<std::string> file;
    std::string priority = "normal";
    bool wait_ack = false;
    double timeout_s = 30;
    bool help = false;
    bool version = false;
    std::string help_text;
};

Options parse_options(int argc, char** argv) {
    Options options;
    po::options_description visible(
        "Usage: aegis-send [options] CHANNEL [-m TEXT | -f FILE]\n\n"
        "Publishes one message to CHANNEL through the local broker (aegis-connect).\n"
        "The payload is TEXT, the bytes of FILE, or standard input.\n\n"
        "Options");
    // clang-format off
    visible.add_options()
        ("message,m", po::value<std::string>()->value_name("TEXT"), "the payload, as given (no newline added)")
        ("file,f", po::value<std::string>()->value_name("FILE"), "read the payload from FILE ('-': standard input)")
        ("priority,p", po::value(&options.priority)->value_name("LEVEL"), "critical, high, normal (default) or low")
        ("wait-ack", po::bool_switch(&options.wait_ack), "return only once the gateway has stored the message")
        ("timeout", po::value(&options.timeout_s)->value_name("SECS"), "give up after SECS (default: 30)")
        ("socket", po::value(&options.socket)->value_name("PATH"), "broker socket (default: $AEGIS_SOCKET or $XDG_RUNTIME_DIR/aegis/broker.sock)")
        ("help,h", po::bool_switch(&options.help), "show this help")
        ("version,V", po::bool_switch(&options.version), "show the version");
    // clang-format on
    po::options_description hidden;
    hidden.add_options()("channel", po::value(&options.channel));
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("channel", 1);
    po::variables_map values;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), values);
    po::notify(values);
    if (values.count("message")) options.message = values["message"].as<std::string>();
    if (values.count("file")) options.file = values["file"].as<std::string>();
    std::ostringstream text;
    text << visible;
    options.help_text = text.str();
    return options;
}

[[nodiscard]] aegis::Result<aegis::Bytes> read_payload(const Options& options) {
    if (options.message) return aegis::Bytes(options.message->begin(), options.message->end());
    const bool from_stdin = !options.file || *options.file == "-";
    std::ifstream file;
    if (!from_stdin) {
        file.open(*options.file, std::ios::binary);
        if (!file) return aegis::make_error(ExitCode::bad_input, "cannot read {}", *options.file);
    }
    std::istream& in = from_stdin ? std::cin : file;
    aegis::Bytes payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return aegis::make_error(ExitCode::bad_input, "cannot read the payload");
    if (payload.size() > ipc::kMaxPayloadBytes) {
        return aegis::make_error(ExitCode::bad_input, "payload of {} bytes is over the limit of {}", payload.size(),
                                 ipc::kMaxPayloadBytes);
    }
    return payload;
}

[[nodiscard]] aegis::Result<ipc::PublishRequest> make_request(const Options& options) {
    if (options.channel.empty())
        return aegis::make_error(ExitCode::usage, "a channel is required (see {} --help)", kTool);
    if (options.message && options.file) return aegis::make_error(ExitCode::usage, "-m and -f cannot be combined");
    if (!(options.timeout_s > 0))
        return aegis::make_error(ExitCode::usage, "--timeout must be a positive number of seconds");
    if (auto valid = aegis::channel::validate_name(options.channel); !valid) return valid.error();
    const auto priority = aegis::protocol::parse_priority(options.priority);
    if (!priority) {
        return aegis::make_error(ExitCode::usage, "unknown priority '{}' (critical, high, normal or low)",
                                 options.priority);
    }
    ipc::PublishRequest request;
    request.channel = options.channel;
    request.priority = *priority;
    request.wait_ack = options.wait_ack;
    return request;
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
    std::signal(SIGPIPE, SIG_IGN);
    auto request = make_request(options);
    if (!request) return aegis::cli::report(kTool, request.error());
    auto payload = read_payload(options);
    if (!payload) return aegis::cli::report(kTool, payload.error());

    const auto deadline =
        ipc::deadline_after(std::chrono::milliseconds(static_cast<long long>(options.timeout_s * 1000)));
    auto client = ipc::Client::connect(ipc::resolve_socket_path(options.socket), kTool, deadline);
    if (!client) return aegis::cli::report(kTool, client.error());
    auto sent = client->publish(*request, *payload, deadline);
    if (!sent) return aegis::cli::report(kTool, sent.error());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] { return run(argc, argv); });
}
