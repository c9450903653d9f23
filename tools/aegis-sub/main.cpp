// aegis-sub: print (or hand to a command) the messages the local broker delivers for channel
// patterns, optionally through a durable subscription.

#include <fmt/format.h>

#include <csignal>
#include <optional>

#include "cli/exec_command.h"
#include "cli/receiver.h"
#include "cli/tool.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "options.h"

namespace {

namespace ipc = aegis::ipc;
namespace cli = aegis::cli;
using aegis::ExitCode;

constexpr std::string_view kTool = "aegis-sub";

// A plain subscription, or a durable one: the broker must answer with its backlog size
// (a broker without durable subscriptions ignores the member and gives none).
[[nodiscard]] aegis::Result<void> subscribe(ipc::Client& client, const aegis::sub::Options& options,
                                            const ipc::Deadline& deadline) {
    // Live messages come batched when the broker offers it (durable ones carry their cursor_seq each).
    const bool batch = options.receive.durable.empty() && ipc::offers(client.hello(), ipc::kMessageBatchFeature);
    nlohmann::json request =
        ipc::to_header(ipc::SubscribeRequest{options.patterns, options.receive.durable, options.reset, batch});
    auto answer = client.call(std::move(request), {}, deadline);
    if (!answer) return answer.take_error();
    if (!options.receive.durable.empty() && !answer->header.contains("backlog")) {
        return aegis::make_error(ExitCode::failure, "this broker does not support durable subscriptions");
    }
    return {};
}

int run(int argc, char** argv) {
    auto options = aegis::sub::parse_options(argc, argv);
    if (!options) return cli::report(kTool, options.error());
    if (cli::print_help_or_version(kTool, options->common)) return 0;
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as a failed write, handled quietly
    // Before any thread starts: SIGINT, SIGTERM and SIGHUP end the --exec commands' process groups
    // first, so no handler outlives aegis-sub.
    std::optional<cli::TerminationSignals> signals;
    if (!options->receive.exec.empty()) signals.emplace();

    const auto deadline = ipc::deadline_after(options->receive.wait);
    const auto connect_deadline = deadline ? deadline : ipc::deadline_after(std::chrono::seconds(30));
    auto client = ipc::Client::connect(ipc::find_broker_socket(options->common.socket), kTool, connect_deadline);
    if (!client) return cli::report(kTool, client.error());
    if (auto subscribed = subscribe(*client, *options, deadline); !subscribed) {
        return cli::report(kTool, subscribed.error());
    }
    cli::Receiver receiver(*client, options->receive, kTool);
    if (signals) signals->on_signal([&receiver] { receiver.stop_commands(); });
    const int code = receiver.run();
    if (signals) signals->on_signal({});
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
