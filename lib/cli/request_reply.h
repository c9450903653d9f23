#pragma once
// The request/reply convention of the tools: a request carries header "reply-to"; the replier
// publishes kind reply, correlated with the request's id, to that channel.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "ipc/client.h"
#include "ipc/messages.h"

namespace aegis::cli {

inline constexpr std::string_view kReplyToHeader = "reply-to";
inline constexpr std::string_view kErrorHeader = "error";

// backend.<agent>.<topic> -> agent.<agent>.<topic>.reply; agent.<id>.<topic> -> backend.<id>.<topic>.reply.
// ExitCode::usage for another channel (the caller must name one with --reply-to).
[[nodiscard]] Result<std::string> default_reply_channel(std::string_view request_channel);

// The value of a header, first match.
[[nodiscard]] std::optional<std::string> header_value(const ipc::Headers& headers, std::string_view key);

// The reply to publish for a request: kind reply, correlated, on its reply-to channel, with
// header error="exit N" when the command failed. nullopt when the message asks for no reply.
[[nodiscard]] std::optional<ipc::PublishRequest> reply_for(const ipc::DeliveredMessage& request, int exit_status);
// The same with header error=`error` when it is not empty ("timed out after 30s (--exec-timeout)").
[[nodiscard]] std::optional<ipc::PublishRequest> reply_with_error(const ipc::DeliveredMessage& request,
                                                                  std::string_view error);

// Reads the connection's messages until `wanted` replies correlated with `request_id` came or
// the deadline passed; returns how many came. Other messages are skipped.
[[nodiscard]] Result<std::size_t> await_replies(ipc::Client& client, const protocol::MessageId& request_id,
                                                std::size_t wanted, const ipc::Deadline& deadline,
                                                const std::function<void(const ipc::DeliveredMessage&)>& on_reply);

}  // namespace aegis::cli
