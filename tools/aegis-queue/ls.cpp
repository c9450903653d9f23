// aegis-queue ls: the queued messages, waiting, in flight or dead.

#include <fmt/format.h>

#include "cli/queue_report.h"
#include "commands.h"

namespace aegis::queue {

namespace {

Result<ipc::RequestBody> request(const Options& o) {
    if (auto checked = check_operands(o, 0); !checked) return checked.take_error();
    const auto state = ipc::parse_state_filter(o.state);
    if (!state) return usage(fmt::format("unknown state '{}' (waiting, in_flight, dead or all)", o.state));
    ipc::QueueRequest list{ipc::QueueOp::list};
    list.state = *state;
    list.limit = o.limit;
    return ipc::RequestBody{list};
}

Result<void> print(const Options& o, const ipc::Frame& answer, std::uint64_t now_ms) {
    const auto messages = answer.header.value("messages", nlohmann::json::array());
    fmt::print("{}", o.json ? messages.dump(2) + "\n" : cli::queue_table(messages, now_ms));
    return {};
}

}  // namespace

const Command kList{"ls", &request, &print, kQueueFeature};

}  // namespace aegis::queue
