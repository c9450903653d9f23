// aegis-queue purge --dead|--all: remove dead letters, or every message, after asking.

#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "cli/queue_report.h"
#include "commands.h"

namespace aegis::queue {

namespace {

Result<ipc::RequestBody> request(const Options& o) {
    if (auto checked = check_operands(o, 0); !checked) return checked.take_error();
    if (o.dead == o.all) return usage("purge needs --dead or --all");
    ipc::QueueRequest purge{ipc::QueueOp::purge};
    purge.dead = o.dead;
    purge.all = o.all;
    return ipc::RequestBody{purge};
}

// Asks on a terminal; refuses without one unless --yes.
Result<bool> confirm(ipc::Client& client, const Options& o, const ipc::Deadline& deadline) {
    if (o.yes) return true;
    if (::isatty(STDIN_FILENO) == 0) return usage("purge asks for confirmation; give --yes when not on a terminal");
    auto stats = client.call(ipc::to_header(ipc::QueueRequest{ipc::QueueOp::stats}), {}, deadline);
    if (!stats) return stats.take_error();
    const auto& s = stats->header.value("stats", nlohmann::json::object());
    const auto count =
        o.dead ? s.value("dead", 0ULL) : s.value("waiting", 0ULL) + s.value("in_flight", 0ULL) + s.value("dead", 0ULL);
    fmt::print(stderr, "purge {} messages? [y/N] ", count);
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes";
}

Result<void> print(const Options& o, const ipc::Frame& answer, std::uint64_t /*now_ms*/) {
    const auto fields = cli::answer_fields(answer.header);
    fmt::print("{}", o.json ? fields.dump(2) + "\n" : cli::queue_count_text(o.command, fields));
    return {};
}

}  // namespace

const Command kPurge{"purge", &request, &print, kQueueFeature, &confirm};

}  // namespace aegis::queue
