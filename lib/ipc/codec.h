#pragma once
// Framing of the local socket (PROTOCOL-local.md §8.2), shared by the broker's server and the
// tools' client. One frame:
//
//   u32 BE total length   (bytes after this field: 4 + header length + payload length)
//   u32 BE header length
//   header                (UTF-8 JSON object)
//   payload               (raw bytes, possibly empty)
//
// Pure code: no sockets. FrameReader takes bytes as they arrive and yields whole frames.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <variant>

#include "core/bytes.h"
#include "ipc/errors.h"
#include "protocol/envelope.h"

namespace aegis::ipc {

inline constexpr int kVersion = 1;
inline constexpr std::size_t kPrefixBytes = 8;
// Frames a client sends (requests): the broker reads no more.
inline constexpr std::uint32_t kMaxHeaderBytes = 1024 * 1024;
inline constexpr std::uint32_t kMaxPayloadBytes = 16 * 1024 * 1024;
// The largest value of the total-length field.
inline constexpr std::uint32_t kMaxFrameBytes = 4 + kMaxHeaderBytes + kMaxPayloadBytes;

// Frames the broker sends (events, responses) hold up to its largest event (PROTOCOL.md §8.2): a
// "message" event's JSON header with every member at its longest, 64 headers of the largest size
// and every byte of them and of the origin id escaped (six bytes for a control byte); a payload
// of up to a whole batch (a "messages" event of one record).
inline constexpr std::size_t kEscapedBytes = 6;  // a control byte in a JSON string
// The header with every string empty and every number absent; the variable parts are added below.
inline constexpr std::string_view kMessageEventSkeleton =
    R"({"channel":"","correlation":"","cursor_seq":,"event":"message","expires_ms":,"headers":[],"id":"",)"
    R"("kind":"","origin_fingerprint":"","origin_id":"","origin_key":"","priority":"","sequence":,"timestamp_ms":,)"
    R"("verified":true})";
inline constexpr std::size_t kMaxU64Digits = 20;
inline constexpr std::uint32_t kMaxEventHeaderBytes = static_cast<std::uint32_t>(
    kMessageEventSkeleton.size() + protocol::kMaxChannelBytes + 32 /* correlation */ + kMaxU64Digits /* cursor_seq */ +
    kMaxU64Digits /* expires_ms */ + 32 /* id */ + 9 /* "heartbeat" */ + 50 /* SHA256: fingerprint */ +
    kEscapedBytes * protocol::kMaxOriginIdBytes + 44 /* base64 key */ + 8 /* "critical" */ +
    kMaxU64Digits /* sequence */ + kMaxU64Digits /* timestamp_ms */ +
    protocol::kMaxHeaders *
        (7 /* ["",""] */ + kEscapedBytes * (protocol::kMaxHeaderKeyBytes + protocol::kMaxHeaderValueBytes)) +
    (protocol::kMaxHeaders - 1) /* commas */);
inline constexpr std::uint32_t kMaxEventFrameBytes =
    static_cast<std::uint32_t>(4 + kMaxEventHeaderBytes + protocol::kMaxBatchBytes);
static_assert(kMaxEventHeaderBytes == 25'266'516 && kMaxEventFrameBytes == 43'092'312, "as PROTOCOL.md §8.2 says");

struct Frame {
    nlohmann::json header;
    Bytes payload;
};

// The whole frame: prefixes, header and payload. The caller keeps within the limits.
[[nodiscard]] Bytes encode_frame(const nlohmann::json& header, ByteView payload = {});
// The same frame, added at the end of `out`.
void append_frame(Bytes& out, const nlohmann::json& header, ByteView payload = {});

// What FrameReader::next found: nothing yet (more bytes needed), a frame, or an error.
using Decoded = std::variant<std::monostate, Frame, LocalError>;

class FrameReader {
public:
    // A client reads the broker's frames with kMaxEventFrameBytes and kMaxEventHeaderBytes.
    explicit FrameReader(std::uint32_t max_frame_bytes = kMaxFrameBytes,
                         std::uint32_t max_header_bytes = kMaxHeaderBytes);

    void feed(ByteView bytes);
    // The next whole frame. A LocalError for which breaks_framing() holds leaves the reader
    // broken (every later call returns it again); a bad header skips just that frame.
    [[nodiscard]] Decoded next();
    // Bytes of an unfinished frame (non-zero at end of stream means a truncated frame).
    [[nodiscard]] std::size_t buffered() const { return buffer_.size() - start_; }
    // True when next() would return at once with a frame or an error, not ask for more bytes.
    [[nodiscard]] bool ready() const;
    [[nodiscard]] bool broken() const { return broken_.has_value(); }

private:
    std::uint32_t max_frame_bytes_;
    std::uint32_t max_header_bytes_;
    Bytes buffer_;
    std::size_t start_ = 0;  // consumed bytes at the front, dropped lazily
    std::optional<LocalError> broken_;
};

// One complete frame in `bytes` and nothing else (a truncated or padded buffer is bad_frame).
[[nodiscard]] Decoded decode_frame(ByteView bytes, std::uint32_t max_frame_bytes = kMaxFrameBytes,
                                   std::uint32_t max_header_bytes = kMaxHeaderBytes);

}  // namespace aegis::ipc
