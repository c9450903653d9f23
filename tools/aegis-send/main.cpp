// aegis-send: publish messages to a channel through the local broker; with --request, wait
// for the replies.

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "cli/payload_source.h"
#include "cli/publish_pipeline.h"
#include "cli/request_reply.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "options.h"
#include "protocol/reason.h"

namespace {

namespace ipc = aegis::ipc;
namespace cli = aegis::cli;
using aegis::ExitCode;
using aegis::send::Options;

constexpr std::string_view kTool = "aegis-send";
// Outstanding publishes on one connection: the broker commits what arrives meanwhile in one go.
constexpr std::size_t kWindow = 4096;
constexpr std::size_t kWindowBytes = 16 * 1024 * 1024;

using FilePtr = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

[[nodiscard]] aegis::Result<FilePtr> open_input(const Options& options) {
    if (!options.file || *options.file == "-") return FilePtr(stdin, [](std::FILE*) { return 0; });
    std::FILE* file = std::fopen(options.file->c_str(), "rb");
    if (file == nullptr)
        return aegis::make_error(ExitCode::bad_input, "cannot read {}: {}", *options.file, std::strerror(errno));
    return FilePtr(file, &std::fclose);
}

[[nodiscard]] bool reads_stdin(const Options& options) {
    return !options.message && (!options.file || *options.file == "-");
}

// An empty standard input is what cron and `</dev/null` give: never taken for an empty message.
[[nodiscard]] aegis::Error empty_stdin() {
    return aegis::make_error(ExitCode::bad_input,
                             "standard input is empty; nothing sent (give -m '' to send an empty message)");
}

// Every payload, each `count` times, through one pipelined connection.
[[nodiscard]] aegis::Result<void> publish_all(ipc::Client& client, const Options& options, std::FILE* input) {
    // The ids are asked for only when they are shown.
    cli::PublishPipeline::OnQueued show_ids;
    if (options.print_id || options.json) {
        show_ids = [&](const std::string& id, const std::string& channel) {
            if (options.print_id) fmt::print("{}\n", id);
            if (options.json) fmt::print("{{\"id\":\"{}\",\"channel\":\"{}\"}}\n", id, channel);
            std::fflush(stdout);
        };
    }
    cli::PublishPipeline pipeline(client, options.request, kWindow, kWindowBytes, options.timeout, std::move(show_ids));
    const auto send_each = [&](aegis::ByteView payload) -> aegis::Result<void> {
        for (std::uint64_t i = 0; i < options.count; ++i) {
            if (auto sent = pipeline.publish(payload); !sent) return sent;
        }
        return {};
    };
    if (options.message) {
        if (auto sent = send_each(aegis::as_bytes(*options.message)); !sent) return sent;
        return pipeline.finish();
    }
    cli::PayloadSource source(::fileno(input), options.split, ipc::kMaxPayloadBytes);
    source.before_wait([&] { return pipeline.flush(); });  // a line that came alone goes out alone
    for (;;) {
        auto payload = source.next();
        if (!payload) return payload.take_error();
        if (!payload->has_value()) break;
        if (options.split == cli::Split::whole && (*payload)->empty() && reads_stdin(options)) return empty_stdin();
        if (auto sent = send_each(**payload); !sent) return sent;
    }
    return pipeline.finish();
}

// Subscribes to the reply channel first, so no reply can be missed, then publishes the request.
int request(ipc::Client& client, const Options& options, std::FILE* input) {
    const auto deadline = ipc::deadline_after(options.timeout);
    if (auto subscribed = client.subscribe(ipc::SubscribeRequest{{options.reply_to}}, deadline); !subscribed) {
        return cli::report(kTool, subscribed.error());
    }
    aegis::Bytes payload;
    if (options.message) {
        payload.assign(options.message->begin(), options.message->end());
    } else {
        auto read = cli::PayloadSource(::fileno(input), cli::Split::whole, ipc::kMaxPayloadBytes).next();
        if (!read) return cli::report(kTool, read.error());
        payload = std::move(**read);
        if (payload.empty() && reads_stdin(options)) return cli::report(kTool, empty_stdin());
    }
    // Sent with wait_ack: the gateway answers a request nobody subscribes to with no_responders
    // at once (PROTOCOL.md §6), rather than leaving it to the timeout.
    auto acked = options.request;
    acked.wait_ack = true;
    auto call = client.send(ipc::to_header(acked), payload, deadline);
    if (!call) return cli::report(kTool, call.error());
    auto answer = client.response(*call, deadline);
    const auto queued = client.take_queued(*call);
    if (!answer) {
        const auto& error = answer.error();
        if (aegis::protocol::reason_of(error) == aegis::protocol::Reason::no_responders) {
            return cli::report(kTool,
                               aegis::make_error(ExitCode::refused, "no responders on {}", options.request.channel));
        }
        if (error.exit == ExitCode::timeout && queued) {
            return cli::report(kTool, aegis::make_error(ExitCode::timeout,
                                                        "0 of {} replies on {} within the timeout; the gateway has not "
                                                        "acknowledged request {}, which stays queued in the broker",
                                                        options.replies, options.reply_to, *queued));
        }
        return cli::report(kTool, error);
    }
    const auto sent = std::optional<std::string>(answer->header.value("message_id", std::string()));
    const auto request_id = ipc::message_id_from_hex(*sent);
    if (!request_id) return cli::report(kTool, aegis::make_error(ExitCode::failure, "the broker gave no message id"));
    if (options.print_id) fmt::print("{}\n", *sent);
    if (options.json) fmt::print("{{\"id\":\"{}\",\"channel\":\"{}\"}}\n", *sent, options.request.channel);
    std::size_t errors = 0;
    std::string first_error;
    auto got =
        cli::await_replies(client, *request_id, options.replies, deadline, [&](const ipc::DeliveredMessage& reply) {
            const auto text = aegis::as_text(reply.payload);
            std::fwrite(text.data(), 1, text.size(), stdout);
            if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
            std::fflush(stdout);
            if (auto error = cli::header_value(reply.headers, cli::kErrorHeader)) {
                if (errors++ == 0) first_error = *error;
            }
        });
    if (!got) return cli::report(kTool, got.error());
    if (*got < options.replies) {
        return cli::report(kTool, aegis::make_error(ExitCode::timeout, "{} of {} replies on {} within the timeout",
                                                    *got, options.replies, options.reply_to));
    }
    if (errors == 1 && options.replies == 1) {
        return cli::report(kTool, aegis::make_error(ExitCode::failure, "the reply is an error: {}", first_error));
    }
    if (errors > 0) {
        return cli::report(kTool, aegis::make_error(ExitCode::failure, "{} of {} replies are errors (the first: {})",
                                                    errors, *got, first_error));
    }
    return 0;
}

int run(int argc, char** argv) {
    auto options = aegis::send::parse_options(argc, argv);
    if (!options) return cli::report(kTool, options.error());
    if (cli::print_help_or_version(kTool, options->common)) return 0;
    std::signal(SIGPIPE, SIG_IGN);
    // The input first: a file that cannot be read is bad input (exit 6) whether a broker runs or not.
    auto input = options->message ? aegis::Result<FilePtr>(FilePtr(nullptr, &std::fclose)) : open_input(*options);
    if (!input) return cli::report(kTool, input.error());
    // One message (-m): its publish goes out with the hello, one round trip less; a stream or a
    // request waits for the hello's answer, which says whether the broker takes batches.
    const auto socket = ipc::find_broker_socket(options->common.socket);
    auto client = options->message && !options->is_request
                      ? ipc::Client::open(socket, kTool)
                      : ipc::Client::connect(socket, kTool, ipc::deadline_after(options->timeout));
    if (!client) return cli::report(kTool, client.error());
    if (options->is_request) return request(*client, *options, input->get());
    if (auto sent = publish_all(*client, *options, input->get()); !sent) return cli::report(kTool, sent.error());
    // Queued all the same (sent once the identity is authorized again), but the caller should know.
    // (An open()ed client has read the hello with the publish's answer.)
    const auto& hello = client->hello();
    if (const auto refusal = hello.is_object() ? hello.value("refusal", nlohmann::json()) : nlohmann::json();
        refusal.is_object()) {
        fmt::print(stderr, "{}: warning: queued; {}\n", kTool,
                   refusal.value("message", std::string("identity refused")));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
