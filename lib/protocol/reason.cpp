#include "protocol/reason.h"

#include <array>

namespace aegis::protocol {

namespace {

struct ReasonInfo {
    Reason reason;
    std::string_view name;
    std::string_view description;
    ExitCode exit;
    bool permanent;
};

// One row per wire value, in wire order, so lookups index by the numeric value.
constexpr std::array<ReasonInfo, 21> kReasons{{
    {Reason::none, "none", "no error", ExitCode::failure, false},
    {Reason::malformed, "malformed", "malformed message", ExitCode::bad_input, true},
    {Reason::unsupported_version, "unsupported_version", "unsupported protocol version", ExitCode::refused, false},
    {Reason::stale_timestamp, "stale_timestamp", "handshake timestamp outside the clock-skew tolerance",
     ExitCode::refused, false},
    {Reason::replayed, "replayed", "replayed handshake", ExitCode::failure, false},
    {Reason::bad_signature, "bad_signature", "bad signature or authentication tag", ExitCode::refused, false},
    {Reason::unknown_identity, "unknown_identity", "unknown identity", ExitCode::refused, true},
    {Reason::server_key_mismatch, "server_key_mismatch", "server key does not match the pinned key", ExitCode::refused,
     false},
    {Reason::access_denied, "access_denied", "access denied", ExitCode::refused, true},
    {Reason::too_large, "too_large", "too large", ExitCode::refused, true},
    {Reason::busy, "busy", "peer busy, try again later", ExitCode::failure, false},
    {Reason::timeout, "timeout", "timed out", ExitCode::timeout, false},
    {Reason::revoked, "revoked", "identity revoked", ExitCode::refused, true},
    {Reason::invalid_channel, "invalid_channel", "invalid channel name or pattern", ExitCode::bad_input, true},
    {Reason::expired, "expired", "message expired", ExitCode::refused, true},
    {Reason::internal, "internal", "internal error at the peer", ExitCode::failure, false},
    {Reason::shutting_down, "shutting_down", "peer shutting down", ExitCode::failure, false},
    {Reason::replaced, "replaced", "replaced by a newer session of this identity", ExitCode::failure, false},
    {Reason::no_responders, "no_responders", "no responders", ExitCode::refused, true},
    // Transient: the broker keeps the message queued and retries it; only a waiting tool is told.
    {Reason::channel_disabled, "channel_disabled", "channel disabled at the gateway", ExitCode::refused, false},
    {Reason::certificate_expired, "certificate_expired", "certificate expired or not yet valid", ExitCode::refused,
     false},
}};

constexpr bool in_wire_order() {
    for (std::size_t i = 0; i < kReasons.size(); ++i) {
        if (static_cast<std::size_t>(kReasons[i].reason) != i) return false;
    }
    return true;
}
static_assert(in_wire_order(), "kReasons must be indexed by the wire value");

// Reasons a newer peer may add still map to something sensible here.
constexpr ReasonInfo kUnknown{Reason::none, "unknown", "unknown reason", ExitCode::failure, false};

const ReasonInfo& info(Reason reason) {
    const auto index = static_cast<std::size_t>(reason);
    return index < kReasons.size() ? kReasons[index] : kUnknown;
}

}  // namespace

std::string_view describe(Reason reason) {
    return info(reason).description;
}

std::string_view name(Reason reason) {
    return info(reason).name;
}

ExitCode exit_code_for(Reason reason) {
    return info(reason).exit;
}

bool is_permanent(Reason reason) {
    return info(reason).permanent;
}

Error protocol_error(Reason reason, std::string_view detail) {
    std::string message(describe(reason));
    if (!detail.empty()) {
        message += ": ";
        // Details often come from the peer; control bytes must not reach a terminal or a log line.
        for (const char c : detail) {
            const auto byte = static_cast<unsigned char>(c);
            message += (byte < 0x20 || byte == 0x7F) ? '?' : c;
        }
    }
    return Error{exit_code_for(reason), std::move(message), static_cast<std::uint16_t>(reason)};
}

Reason reason_of(const Error& error) {
    return static_cast<Reason>(error.reason);
}

std::string_view clip_reason_text(std::string_view text) {
    if (text.size() <= kMaxReasonTextBytes) return text;
    std::size_t end = kMaxReasonTextBytes;
    // Back off UTF-8 continuation bytes (10xxxxxx) so a character is never cut in half.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

}  // namespace aegis::protocol
