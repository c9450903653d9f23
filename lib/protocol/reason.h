#pragma once
// The typed reasons a peer refuses a handshake, a publish or a subscribe (PROTOCOL.md §Errors).
// Values are on the wire: never renumber, only add.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::protocol {

enum class Reason : std::uint16_t {
    none = 0,
    malformed = 1,             // a message could not be parsed
    unsupported_version = 2,   // protocol version not spoken by the peer
    stale_timestamp = 3,       // handshake timestamp outside the clock-skew tolerance
    replayed = 4,              // a handshake message seen before
    bad_signature = 5,         // a signature or an AEAD tag did not verify
    unknown_identity = 6,      // the client key is not authorized by the gateway
    server_key_mismatch = 7,   // the server key is not the pinned one (client side)
    access_denied = 8,         // channel access control refused a publish or subscribe
    too_large = 9,             // a message or frame over the peer's limit
    busy = 10,                 // session or rate limit reached; try again later
    timeout = 11,              // the peer took too long
    revoked = 12,              // the identity was removed from the authorized file
    invalid_channel = 13,      // not a valid channel name or pattern
    expired = 14,              // the message's TTL passed before it could be delivered
    internal = 15,             // the peer failed; not the sender's fault
    shutting_down = 16,        // the peer is stopping; reconnect later
    replaced = 17,             // a newer session of the same identity took this one's place
    no_responders = 18,        // a request no identity subscribes to: not stored, refused at once
    channel_disabled = 19,     // an operator disabled the channel at the gateway; retry later
    certificate_expired = 20,  // the identity's certificate is expired or not yet valid
};

// The longest human-readable text a refusal, error or goodbye carries on the wire.
inline constexpr std::size_t kMaxReasonTextBytes = 1024;

// "unknown identity", for error lines and logs.
[[nodiscard]] std::string_view describe(Reason reason);
// "unknown_identity", for metrics labels and JSON.
[[nodiscard]] std::string_view name(Reason reason);
// The shared exit code a tool uses when a peer gives this reason.
[[nodiscard]] ExitCode exit_code_for(Reason reason);
// True for refusals a retry cannot fix (a message refused for them goes to dead letters).
[[nodiscard]] bool is_permanent(Reason reason);
// An Error that carries the reason; the message is "<describe(reason)>: <detail>" or just describe.
// Control characters in `detail` (often text from the peer) become '?'.
[[nodiscard]] Error protocol_error(Reason reason, std::string_view detail = {});
// The reason carried by an Error (Reason::none if it did not come from the protocol).
[[nodiscard]] Reason reason_of(const Error& error);
// `text` cut to kMaxReasonTextBytes on a UTF-8 character boundary, for sending.
[[nodiscard]] std::string_view clip_reason_text(std::string_view text);

}  // namespace aegis::protocol
