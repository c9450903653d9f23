#include "protocol/frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/wire.h"
#include "protocol/envelope.h"

namespace aegis::protocol {

namespace {

constexpr std::size_t kMaxPatternBytes = kMaxChannelBytes;
constexpr std::size_t kU16Max = std::numeric_limits<std::uint16_t>::max();

Error malformed(std::string_view what) {
    return protocol_error(Reason::malformed, what);
}

// Writes at most what the length fields can frame; anything over the limits is refused by the
// peer's decode_frame rather than corrupting the frame.
void write_patterns(WireWriter& out, const std::vector<std::string>& patterns) {
    const auto count = std::min(patterns.size(), kU16Max);
    out.u16(static_cast<std::uint16_t>(count));
    for (std::size_t i = 0; i < count; ++i) out.text16(std::string_view(patterns[i]).substr(0, kU16Max));
}

bool read_patterns(WireReader& in, std::vector<std::string>& patterns) {
    std::uint16_t count = 0;
    if (!in.u16(count) || count == 0 || count > kMaxPatternsPerFrame) return false;
    patterns.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        std::string pattern;
        if (!in.text16(pattern) || pattern.empty() || pattern.size() > kMaxPatternBytes) return false;
        patterns.push_back(std::move(pattern));
    }
    return true;
}

bool read_batch(WireReader& in, Bytes& batch) {
    ByteView bytes;
    if (!in.bytes32(bytes) || bytes.empty() || bytes.size() > kMaxBatchBytes) return false;
    batch.assign(bytes.begin(), bytes.end());
    return true;
}

bool read_reason(WireReader& in, Frame& frame, bool allow_none) {
    std::uint16_t reason = 0;
    if (!in.u16(reason) || !in.text16(frame.text) || frame.text.size() > kMaxReasonTextBytes) return false;
    if (!allow_none && reason == static_cast<std::uint16_t>(Reason::none)) return false;
    frame.reason = static_cast<Reason>(reason);
    return true;
}

bool read_body(WireReader& in, Frame& frame) {
    switch (frame.type) {
        case FrameType::publish: return in.u32(frame.request_id) && read_batch(in, frame.batch);
        case FrameType::subscribe:
        case FrameType::unsubscribe: return in.u32(frame.request_id) && read_patterns(in, frame.patterns);
        case FrameType::deliver_ack: return in.u64(frame.sequence);
        case FrameType::puback: return in.u32(frame.request_id) && in.u64(frame.sequence);
        case FrameType::suback: return in.u32(frame.request_id);
        case FrameType::deliver: return in.u64(frame.sequence) && read_batch(in, frame.batch);
        case FrameType::error: return in.u32(frame.request_id) && read_reason(in, frame, false);
        case FrameType::goodbye: return read_reason(in, frame, true);
    }
    return false;
}

bool known_type(std::uint8_t type) {
    switch (static_cast<FrameType>(type)) {
        case FrameType::publish:
        case FrameType::subscribe:
        case FrameType::unsubscribe:
        case FrameType::deliver_ack:
        case FrameType::puback:
        case FrameType::suback:
        case FrameType::deliver:
        case FrameType::error:
        case FrameType::goodbye: return true;
    }
    return false;
}

}  // namespace

Bytes encode_frame(const Frame& frame) {
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(frame.type));
    switch (frame.type) {
        case FrameType::publish:
            out.u32(frame.request_id);
            out.bytes32(frame.batch);
            break;
        case FrameType::subscribe:
        case FrameType::unsubscribe:
            out.u32(frame.request_id);
            write_patterns(out, frame.patterns);
            break;
        case FrameType::deliver_ack: out.u64(frame.sequence); break;
        case FrameType::puback:
            out.u32(frame.request_id);
            out.u64(frame.sequence);
            break;
        case FrameType::suback: out.u32(frame.request_id); break;
        case FrameType::deliver:
            out.u64(frame.sequence);
            out.bytes32(frame.batch);
            break;
        case FrameType::error:
            out.u32(frame.request_id);
            out.u16(static_cast<std::uint16_t>(frame.reason));
            out.text16(clip_reason_text(frame.text));
            break;
        case FrameType::goodbye:
            out.u16(static_cast<std::uint16_t>(frame.reason));
            out.text16(clip_reason_text(frame.text));
            break;
    }
    return out.take();
}

Result<Frame> decode_frame(ByteView bytes) {
    if (bytes.size() > kMaxBatchBytes + 64) return protocol_error(Reason::too_large, "frame too large");
    WireReader in(bytes);
    std::uint8_t type = 0;
    if (!in.u8(type)) return malformed("empty frame");
    if (!known_type(type)) return malformed(fmt::format("unknown frame type 0x{:02x}", type));
    Frame frame;
    frame.type = static_cast<FrameType>(type);
    if (!read_body(in, frame)) return malformed(fmt::format("frame of type 0x{:02x} malformed", type));
    if (!in.at_end()) return malformed(fmt::format("trailing bytes after frame of type 0x{:02x}", type));
    return frame;
}

}  // namespace aegis::protocol
