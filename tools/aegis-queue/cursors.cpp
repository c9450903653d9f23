// aegis-queue cursors, cursor-rm NAME: list and remove the broker's durable subscriptions.

#include <fmt/format.h>

#include "cli/queue_report.h"
#include "commands.h"

namespace aegis::queue {

namespace {

constexpr std::string_view kCursorFeature = "durable subscription listing";

Result<ipc::RequestBody> list_request(const Options& o) {
    if (auto checked = check_operands(o, 0); !checked) return checked.take_error();
    return ipc::RequestBody{ipc::CursorListRequest{}};
}

Result<void> print_list(const Options& o, const ipc::Frame& answer, std::uint64_t now_ms) {
    const auto cursors = answer.header.value("cursors", nlohmann::json::array());
    fmt::print("{}", o.json ? cursors.dump(2) + "\n" : cli::cursor_table(cursors, now_ms));
    return {};
}

Result<ipc::RequestBody> remove_request(const Options& o) {
    if (o.args.size() != 1) return usage("cursor-rm needs one durable subscription NAME");
    return ipc::RequestBody{ipc::CursorDeleteRequest{o.args[0]}};
}

Result<void> print_removed(const Options& o, const ipc::Frame& answer, std::uint64_t /*now_ms*/) {
    if (!answer.header.value("deleted", false)) {
        return make_error(ExitCode::failure, "no durable subscription named {}", o.args[0]);
    }
    if (o.json) {
        fmt::print("{}\n", cli::answer_fields(answer.header).dump(2));
    } else {
        fmt::print("removed durable subscription {}\n", o.args[0]);
    }
    return {};
}

}  // namespace

const Command kCursors{"cursors", &list_request, &print_list, kCursorFeature};
const Command kCursorRemove{"cursor-rm", &remove_request, &print_removed, kCursorFeature};

}  // namespace aegis::queue
