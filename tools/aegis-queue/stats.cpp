// aegis-queue stats: how many messages wait, are in flight or dead, and the queue's bounds.

#include <fmt/format.h>

#include "cli/queue_report.h"
#include "commands.h"

namespace aegis::queue {

namespace {

Result<ipc::RequestBody> request(const Options& o) {
    if (auto checked = check_operands(o, 0); !checked) return checked.take_error();
    return ipc::RequestBody{ipc::QueueRequest{ipc::QueueOp::stats}};
}

Result<void> print(const Options& o, const ipc::Frame& answer, std::uint64_t now_ms) {
    const auto fields = cli::answer_fields(answer.header);
    fmt::print("{}", o.json ? fields.dump(2) + "\n"
                            : cli::queue_stats_text(fields.value("stats", nlohmann::json::object()), now_ms));
    return {};
}

}  // namespace

const Command kStats{"stats", &request, &print, kQueueFeature};

}  // namespace aegis::queue
