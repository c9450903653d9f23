#include "cli/message_format.h"

#include <fmt/format.h>

#include <ctime>

#include "crypto/primitives.h"

namespace aegis::cli {

namespace {

[[nodiscard]] std::string hex_of(ByteView bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const auto byte : bytes) out += fmt::format("{:02x}", byte);
    return out;
}

// The text a directive stands for; nullopt for an unknown one.
[[nodiscard]] std::optional<std::string> directive(const ipc::DeliveredMessage& message, char letter) {
    switch (letter) {
        case 'c': return message.channel;
        case 'p': return std::string(as_text(message.payload));
        case 'i': return ipc::to_hex(message.id);
        case 'o': return message.origin_id;
        case 'f': return message.origin_fingerprint;
        case 't': return iso8601_utc(message.timestamp_ms);
        case 'x': return hex_of(message.payload);
        case 'l': return std::to_string(message.payload.size());
        case 'k': return std::string(protocol::to_string(message.kind));
        case '%': return std::string("%");
        default: return std::nullopt;
    }
}

[[nodiscard]] std::optional<char> escape(char letter) {
    switch (letter) {
        case 'n': return '\n';
        case 't': return '\t';
        case '0': return '\0';
        case '\\': return '\\';
        default: return std::nullopt;
    }
}

}  // namespace

bool is_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        std::size_t extra = 0;
        std::uint32_t code = 0;
        if (byte < 0x80) {
            ++i;
            continue;
        }
        if ((byte & 0xE0) == 0xC0) {
            extra = 1;
            code = byte & 0x1Fu;
        } else if ((byte & 0xF0) == 0xE0) {
            extra = 2;
            code = byte & 0x0Fu;
        } else if ((byte & 0xF8) == 0xF0) {
            extra = 3;
            code = byte & 0x07u;
        } else {
            return false;
        }
        if (i + extra >= text.size()) return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) return false;
            code = (code << 6) | (next & 0x3Fu);
        }
        constexpr std::uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
        if (code < kMinimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
        i += extra + 1;
    }
    return true;
}

std::string iso8601_utc(std::uint64_t unix_ms) {
    const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
    std::tm parts{};
    ::gmtime_r(&seconds, &parts);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", parts.tm_year + 1900, parts.tm_mon + 1,
                       parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, unix_ms % 1000);
}

nlohmann::json message_json(const ipc::DeliveredMessage& message) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [key, value] : message.headers) headers[key] = value;
    nlohmann::json line{{"id", ipc::to_hex(message.id)},
                        {"channel", message.channel},
                        {"origin_id", message.origin_id},
                        {"origin_fingerprint", message.origin_fingerprint},
                        {"verified", message.verified},
                        {"sequence", message.sequence},
                        {"timestamp", iso8601_utc(message.timestamp_ms)},
                        {"timestamp_ms", message.timestamp_ms},
                        {"priority", protocol::to_string(message.priority)},
                        {"kind", protocol::to_string(message.kind)},
                        {"correlation", nullptr},
                        {"headers", headers}};
    if (message.expires_ms != 0) line["expires_ms"] = message.expires_ms;
    if (message.correlation) line["correlation"] = ipc::to_hex(*message.correlation);
    const auto text = as_text(message.payload);
    if (is_utf8(text)) {
        line["payload"] = std::string(text);
    } else {
        line["payload_base64"] = crypto::base64_encode(message.payload);
    }
    return line;
}

Result<void> validate_format(std::string_view format) {
    for (std::size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if (c != '%' && c != '\\') continue;
        if (i + 1 == format.size()) return make_error(ExitCode::usage, "the format ends inside a '{}' directive", c);
        const char next = format[++i];
        ipc::DeliveredMessage probe;
        if (c == '%' && !directive(probe, next))
            return make_error(ExitCode::usage, "unknown format directive %{}", next);
        if (c == '\\' && !escape(next)) return make_error(ExitCode::usage, "unknown format escape \\{}", next);
    }
    return {};
}

std::string render_format(const ipc::DeliveredMessage& message, std::string_view format) {
    std::string out;
    for (std::size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if ((c != '%' && c != '\\') || i + 1 == format.size()) {
            out += c;
            continue;
        }
        const char next = format[i + 1];
        std::optional<std::string> expanded;
        if (c == '%') {
            expanded = directive(message, next);
        } else if (const auto escaped = escape(next)) {
            expanded = std::string(1, *escaped);
        }
        if (!expanded) {
            out += c;
            continue;
        }
        out += *expanded;
        ++i;
    }
    return out;
}

std::string render_message(const ipc::DeliveredMessage& message, const OutputStyle& style) {
    std::string out;
    switch (style.style) {
        case Style::json:
            out = message_json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            break;
        case Style::format: out = render_format(message, style.format); break;
        case Style::channel_and_payload:
            out = message.channel + ' ';
            out.append(as_text(message.payload));
            break;
        case Style::payload: out.append(as_text(message.payload)); break;
    }
    out += style.terminator;
    return out;
}

}  // namespace aegis::cli
