#include "ipc/errors.h"

#include <utility>

#include "protocol/reason.h"

namespace aegis::ipc {

std::string_view name(LocalReason reason) {
    switch (reason) {
        case LocalReason::bad_frame: return "bad_frame";
        case LocalReason::frame_too_large: return "frame_too_large";
        case LocalReason::bad_json: return "bad_json";
        case LocalReason::bad_request: return "bad_request";
        case LocalReason::unknown_op: return "unknown_op";
        case LocalReason::missing_field: return "missing_field";
        case LocalReason::invalid_field: return "invalid_field";
        case LocalReason::version_mismatch: return "version_mismatch";
        case LocalReason::hello_required: return "hello_required";
        case LocalReason::permission_denied: return "permission_denied";
        case LocalReason::not_connected: return "not_connected";
        case LocalReason::overloaded: return "overloaded";
        case LocalReason::queue_full: return "queue_full";
        case LocalReason::store_failed: return "store_failed";
        case LocalReason::not_found: return "not_found";
        case LocalReason::cursor_busy: return "cursor_busy";
        case LocalReason::patterns_differ: return "patterns_differ";
        case LocalReason::dropped: return "dropped";
        case LocalReason::gave_up: return "gave_up";
        case LocalReason::failed: return "failed";
    }
    return "bad_request";
}

ExitCode exit_code_for(LocalReason reason) {
    switch (reason) {
        case LocalReason::permission_denied: return ExitCode::unreachable;
        case LocalReason::not_connected: return ExitCode::unreachable;
        case LocalReason::overloaded: return ExitCode::failure;
        case LocalReason::version_mismatch: return ExitCode::failure;
        case LocalReason::queue_full: return ExitCode::failure;
        case LocalReason::store_failed: return ExitCode::failure;
        case LocalReason::not_found: return ExitCode::failure;
        case LocalReason::cursor_busy: return ExitCode::failure;
        case LocalReason::dropped: return ExitCode::refused;
        case LocalReason::gave_up: return ExitCode::failure;
        case LocalReason::failed: return ExitCode::failure;
        default: return ExitCode::usage;
    }
}

bool breaks_framing(LocalReason reason) {
    return reason == LocalReason::bad_frame || reason == LocalReason::frame_too_large;
}

WireError wire_error(LocalReason reason, std::string message, ExitCode exit) {
    return WireError{std::string(name(reason)), std::move(message), exit};
}

WireError wire_error(protocol::Reason reason, std::string message, ExitCode exit) {
    return WireError{std::string(protocol::name(reason)), std::move(message), exit};
}

WireError to_wire(const LocalError& error) {
    return WireError{std::string(name(error.reason)), error.message, exit_code_for(error.reason)};
}

WireError to_wire(const Error& error) {
    const auto reason = protocol::reason_of(error);
    if (reason == protocol::Reason::none) return wire_error(LocalReason::failed, error.message, error.exit);
    return wire_error(reason, error.message, error.exit);
}

namespace {

[[nodiscard]] std::optional<protocol::Reason> protocol_reason_named(std::string_view text) {
    constexpr std::uint16_t kLastKnown = 64;  // reasons are small numbers; unknown ones name "unknown"
    for (std::uint16_t value = 1; value <= kLastKnown; ++value) {
        const auto reason = static_cast<protocol::Reason>(value);
        if (protocol::name(reason) == text) return reason;
    }
    return std::nullopt;
}

}  // namespace

Error to_error(const WireError& error) {
    Error out{error.exit, error.message, 0};
    if (const auto reason = protocol_reason_named(error.reason)) out.reason = static_cast<std::uint16_t>(*reason);
    return out;
}

}  // namespace aegis::ipc
