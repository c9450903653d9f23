// aegis-queue show ID, retry ID|--dead, drop ID: one message (or every dead one for retry --dead).

#include <fmt/format.h>

#include <chrono>
#include <variant>

#include "cli/duration.h"
#include "cli/queue_report.h"
#include "commands.h"

namespace aegis::queue {

namespace {

// The request for show, retry or drop of the message named by the operand (none: retry --dead).
[[nodiscard]] Result<ipc::RequestBody> by_id(const Options& o, ipc::QueueRequest request) {
    if (!o.args.empty()) {
        request.message_id = ipc::message_id_from_hex(o.args[0]);
        if (!request.message_id) {
            return make_error(ExitCode::bad_input, "'{}' is not a message id (32 hex digits)", o.args[0]);
        }
    }
    return ipc::RequestBody{request};
}

Result<ipc::RequestBody> show_request(const Options& o) {
    if (auto checked = check_operands(o, 1); !checked) return checked.take_error();
    return by_id(o, ipc::QueueRequest{ipc::QueueOp::show});
}

Result<ipc::RequestBody> drop_request(const Options& o) {
    if (auto checked = check_operands(o, 1); !checked) return checked.take_error();
    return by_id(o, ipc::QueueRequest{ipc::QueueOp::drop});
}

Result<ipc::RequestBody> retry_request(const Options& o) {
    if (auto checked = check_operands(o, o.dead ? 0 : 1); !checked) return checked.take_error();
    ipc::QueueRequest retry{ipc::QueueOp::retry};
    retry.dead = o.dead;
    auto request = by_id(o, retry);  // a bad id is reported before a bad --ttl
    if (!request || !o.ttl_given) return request;
    auto ttl = cli::parse_duration(o.ttl, "--ttl", std::chrono::milliseconds(1), std::chrono::hours(720));
    if (!ttl) return ttl.take_error();
    std::get<ipc::QueueRequest>(*request).ttl_ms = static_cast<std::uint64_t>(ttl->count());
    return request;
}

Result<void> print_show(const Options& o, const ipc::Frame& answer, std::uint64_t now_ms) {
    const auto message = answer.header.value("message", nlohmann::json::object());
    if (o.json) {
        fmt::print("{}\n", cli::queue_message_json(message, answer.payload).dump(2));
    } else {
        fmt::print("{}", cli::queue_message_text(message, answer.payload, now_ms));
    }
    return {};
}

// "retrying 2 messages", "dropped 1 message" (purge.cpp prints "purged ..." the same way).
Result<void> print_count(const Options& o, const ipc::Frame& answer, std::uint64_t /*now_ms*/) {
    const auto fields = cli::answer_fields(answer.header);
    fmt::print("{}", o.json ? fields.dump(2) + "\n" : cli::queue_count_text(o.command, fields));
    return {};
}

}  // namespace

const Command kShow{"show", &show_request, &print_show, kQueueFeature};
const Command kRetry{"retry", &retry_request, &print_count, kQueueFeature};
const Command kDrop{"drop", &drop_request, &print_count, kQueueFeature};

}  // namespace aegis::queue
