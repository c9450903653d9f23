#pragma once
// Session frames (PROTOCOL.md §6): what travels inside records between a broker and the
// gateway once the handshake is done. Each record carries exactly one frame.

#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "protocol/reason.h"

namespace aegis::protocol {

enum class FrameType : std::uint8_t {
    // broker -> gateway
    publish = 0x01,      // request_id, batch           -> puback | error
    subscribe = 0x02,    // request_id, patterns        -> suback | error
    unsubscribe = 0x03,  // request_id, patterns        -> suback
    deliver_ack = 0x04,  // sequence: everything up to it is safely received
    // gateway -> broker
    puback = 0x11,   // request_id, sequence (number of messages stored)
    suback = 0x12,   // request_id
    deliver = 0x13,  // sequence (per-session delivery number), batch
    error = 0x14,    // request_id (0: not tied to a request), reason, text
    goodbye = 0x15,  // reason, text: the gateway is closing this session
};

struct Frame {
    FrameType type = FrameType::error;
    std::uint32_t request_id = 0;
    std::uint64_t sequence = 0;
    Reason reason = Reason::none;
    std::string text;
    std::vector<std::string> patterns;
    Bytes batch;  // an encoded SignedBatch (publish, deliver)
};

inline constexpr std::size_t kMaxPatternsPerFrame = 256;

// Texts longer than kMaxReasonTextBytes are cut; patterns and batches over their limits are
// written as given and refused by the peer's decode_frame.
[[nodiscard]] Bytes encode_frame(const Frame& frame);
// Reason::malformed for an unknown type, a short or overlong frame, or too many patterns.
[[nodiscard]] Result<Frame> decode_frame(ByteView bytes);

}  // namespace aegis::protocol
