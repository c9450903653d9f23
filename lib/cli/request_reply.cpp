#include "cli/request_reply.h"

#include <fmt/format.h>

namespace aegis::cli {

Result<std::string> default_reply_channel(std::string_view request_channel) {
    const auto first_dot = request_channel.find('.');
    const auto head = request_channel.substr(0, first_dot);
    const bool has_topic =
        first_dot != std::string_view::npos && request_channel.find('.', first_dot + 1) != std::string_view::npos;
    if (has_topic && head == "backend") return fmt::format("agent{}.reply", request_channel.substr(first_dot));
    if (has_topic && head == "agent") return fmt::format("backend{}.reply", request_channel.substr(first_dot));
    return make_error(ExitCode::usage, "no default reply channel for '{}' (give --reply-to CHANNEL)", request_channel);
}

std::optional<std::string> header_value(const ipc::Headers& headers, std::string_view key) {
    for (const auto& [name, value] : headers) {
        if (name == key) return value;
    }
    return std::nullopt;
}

std::optional<ipc::PublishRequest> reply_for(const ipc::DeliveredMessage& request, int exit_status) {
    return reply_with_error(request, exit_status == 0 ? std::string() : fmt::format("exit {}", exit_status));
}

std::optional<ipc::PublishRequest> reply_with_error(const ipc::DeliveredMessage& request, std::string_view error) {
    if (request.kind != protocol::Kind::request) return std::nullopt;
    auto reply_to = header_value(request.headers, kReplyToHeader);
    if (!reply_to || reply_to->empty()) return std::nullopt;
    ipc::PublishRequest reply;
    reply.channel = std::move(*reply_to);
    reply.kind = protocol::Kind::reply;
    reply.correlation = request.id;
    reply.priority = request.priority;
    if (!error.empty()) reply.headers.emplace_back(std::string(kErrorHeader), std::string(error));
    return reply;
}

Result<std::size_t> await_replies(ipc::Client& client, const protocol::MessageId& request_id, std::size_t wanted,
                                  const ipc::Deadline& deadline,
                                  const std::function<void(const ipc::DeliveredMessage&)>& on_reply) {
    std::size_t got = 0;
    while (got < wanted) {
        auto next = client.next_message(deadline);
        if (!next) return next.take_error();
        if (!next->has_value()) break;
        const auto& message = **next;
        if (message.kind != protocol::Kind::reply || message.correlation != request_id) continue;
        on_reply(message);
        ++got;
    }
    return got;
}

}  // namespace aegis::cli
