// aegis-queue: look at and manage the local broker's outbound queue (waiting, in-flight and
// dead messages) and its durable subscriptions, through the queue.* and cursor.* operations of
// the local socket. Each command is a short file (commands.h).

#include <fmt/format.h>

#include "cli/queue_report.h"
#include "cli/tool.h"
#include "commands.h"
#include "core/clock.h"
#include "ipc/client.h"
#include "ipc/socket_path.h"
#include "options.h"
#include "protocol/reason.h"

namespace {

namespace cli = aegis::cli;
namespace ipc = aegis::ipc;
namespace queue = aegis::queue;
using aegis::ExitCode;
using queue::kTool;

constexpr const queue::Command* kCommands[] = {&queue::kList,  &queue::kShow,  &queue::kRetry,   &queue::kDrop,
                                               &queue::kPurge, &queue::kStats, &queue::kCursors, &queue::kCursorRemove};

[[nodiscard]] aegis::Result<const queue::Command*> find_command(const queue::Options& o) {
    for (const auto* command : kCommands) {
        if (command->name == o.command) return command;
    }
    if (auto checked = queue::check_operands(o, 0); !checked) return checked.take_error();
    if (o.command.empty()) return queue::usage("a command is required");
    return queue::usage(fmt::format("unknown command '{}'", o.command));
}

int run(int argc, char** argv) {
    const auto options = queue::parse_options(argc, argv);
    if (cli::print_help_or_version(kTool, options.common)) return 0;
    auto timeout = options.common.timeout_or_default();
    if (!timeout) return cli::report(kTool, timeout.error());
    auto command = find_command(options);
    if (!command) return cli::report(kTool, command.error());
    const auto& c = **command;
    auto request = c.request(options);
    if (!request) return cli::report(kTool, request.error());
    const auto deadline = ipc::deadline_after(*timeout);
    auto client = ipc::Client::connect(ipc::find_broker_socket(options.common.socket), kTool, deadline);
    if (!client) return cli::report(kTool, client.error());
    if (c.confirm != nullptr) {
        auto confirmed = c.confirm(*client, options, deadline);
        if (!confirmed) return cli::report(kTool, cli::explain_unsupported(confirmed.take_error(), c.feature));
        if (!*confirmed) return cli::report(kTool, aegis::make_error(ExitCode::failure, "not purged"));
    }
    auto answer = client->call(ipc::to_header(*request), {}, deadline);
    if (!answer) {
        auto error = answer.take_error();
        if (error.reason == static_cast<std::uint16_t>(aegis::protocol::Reason::expired)) {
            error.message += "; give --ttl DURATION to send it with a fresh TTL";
        }
        return cli::report(kTool, cli::explain_unsupported(std::move(error), c.feature));
    }
    if (auto printed = c.print(options, *answer, aegis::unix_time_ms()); !printed) {
        return cli::report(kTool, printed.error());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_tool(kTool, [&] { return run(argc, argv); });
}
