#pragma once
// How a delivered message is written: its payload, one JSON object, or a user format string
// (aegis-sub -F). Pure functions; the tool decides where the bytes go.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/result.h"
#include "ipc/messages.h"

namespace aegis::cli {

// Valid UTF-8 (no overlong forms, no surrogates)?
[[nodiscard]] bool is_utf8(std::string_view text);

// "2026-11-25T18:46:24.123Z"
[[nodiscard]] std::string iso8601_utc(std::uint64_t unix_ms);

// Every envelope field; the payload as "payload" when it is UTF-8 text, else "payload_base64".
[[nodiscard]] nlohmann::json message_json(const ipc::DeliveredMessage& message);

// Checks a -F format: known % directives and backslash escapes only.
[[nodiscard]] Result<void> validate_format(std::string_view format);

// Expands a -F format: %c channel, %p payload, %i id, %o origin id, %f origin fingerprint,
// %t ISO-8601 time, %x payload hex, %l payload length, %k kind, %% a percent sign;
// \n newline, \t tab, \0 NUL, \\ backslash. Unknown directives are kept as written.
[[nodiscard]] std::string render_format(const ipc::DeliveredMessage& message, std::string_view format);

enum class Style { payload, channel_and_payload, json, format };

struct OutputStyle {
    Style style = Style::payload;
    std::string format;      // for Style::format
    char terminator = '\n';  // after each message ('\0' with -0)
};

// One message as aegis-sub writes it, terminator included.
[[nodiscard]] std::string render_message(const ipc::DeliveredMessage& message, const OutputStyle& style);

}  // namespace aegis::cli
