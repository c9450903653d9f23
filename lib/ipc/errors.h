#pragma once
// The typed errors of the local socket protocol (PROTOCOL-local.md §8.5). A local reason is
// the broker's own word for a bad request; refusals relayed from the gateway keep their
// protocol::Reason name. Both travel as {"reason": name, "message": text, "exit": code}.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::protocol {
enum class Reason : std::uint16_t;
}

namespace aegis::ipc {

enum class LocalReason : std::uint8_t {
    bad_frame,          // the length prefixes do not describe a frame: the connection is closed
    frame_too_large,    // a length prefix over the limit: the connection is closed
    bad_json,           // the JSON header does not parse
    bad_request,        // the header is not a JSON object
    unknown_op,         // "op" names no operation
    missing_field,      // a required field is absent
    invalid_field,      // a field has the wrong type or an impossible value
    version_mismatch,   // hello asked for a version the broker does not speak
    hello_required,     // the first request on a connection must be hello
    permission_denied,  // the peer is not the broker's user (SO_PEERCRED)
    not_connected,      // the broker has no session to the gateway for this request
    overloaded,         // the broker's limit on pending requests was reached
    queue_full,         // the outbound queue is at its bound; nothing queued was dropped
    store_failed,       // the state file cannot be written (disk full, I/O error)
    not_found,          // no such message (queue operations) or durable subscription
    cursor_busy,        // another client is attached to the durable subscription
    patterns_differ,    // a durable subscribe whose patterns are not the cursor's, without reset
    dropped,            // the operator removed the message a wait_ack publish waited for
    gave_up,            // a wait_ack publish's message became a dead letter after --max-attempts
    failed,             // anything else: an error with no protocol reason
};

[[nodiscard]] std::string_view name(LocalReason reason);
[[nodiscard]] ExitCode exit_code_for(LocalReason reason);
// True when the frame boundaries are lost and the connection must be closed.
[[nodiscard]] bool breaks_framing(LocalReason reason);

struct LocalError {
    LocalReason reason = LocalReason::bad_request;
    std::string message;
};

// The error object as it travels: the reason's name, a message and the exit code to use.
struct WireError {
    std::string reason;
    std::string message;
    ExitCode exit = ExitCode::failure;
};

// The error object for a reason: its name, the message and the exit code the broker gives.
[[nodiscard]] WireError wire_error(LocalReason reason, std::string message, ExitCode exit);
[[nodiscard]] WireError wire_error(protocol::Reason reason, std::string message, ExitCode exit);

[[nodiscard]] WireError to_wire(const LocalError& error);
// A library Error; its protocol reason (if any) gives the name, else "failed".
[[nodiscard]] WireError to_wire(const Error& error);
// Back into an Error for a tool: protocol reason names set Error::reason.
[[nodiscard]] Error to_error(const WireError& error);

}  // namespace aegis::ipc
