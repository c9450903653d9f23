#pragma once
// aegis-queue's tables: the broker's queue.list, queue.show and queue.stats answers as text.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"

namespace aegis::cli {

// One line per message under a header line; "no messages" when empty.
[[nodiscard]] std::string queue_table(const nlohmann::json& messages, std::uint64_t now_ms);
// "field: value" lines, then the payload (as text, or hex when it is not text).
[[nodiscard]] std::string queue_message_text(const nlohmann::json& message, ByteView payload, std::uint64_t now_ms);
[[nodiscard]] std::string queue_stats_text(const nlohmann::json& stats, std::uint64_t now_ms);
// The broker's durable subscriptions (cursor.list), one line each; "no durable subscriptions" when none.
[[nodiscard]] std::string cursor_table(const nlohmann::json& cursors, std::uint64_t now_ms);

// The message of a queue.show answer with its payload added ("payload" or "payload_base64").
[[nodiscard]] nlohmann::json queue_message_json(nlohmann::json message, ByteView payload);

// The fields of a broker's answer, without its "id" and "ok".
[[nodiscard]] nlohmann::json answer_fields(const nlohmann::json& answer);
// What retry, drop or purge did: "retrying 2 messages", and the expired ones not retried.
[[nodiscard]] std::string queue_count_text(std::string_view command, const nlohmann::json& fields);

// A broker that does not know an op answers unknown_op; said plainly.
[[nodiscard]] Error explain_unsupported(Error error, std::string_view what);

}  // namespace aegis::cli
