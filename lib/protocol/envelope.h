#pragma once
// The message envelope and its signed batches (PROTOCOL.md §5). A batch is one or more
// messages from one origin to one channel under one Ed25519 signature over the batch's
// canonical encoding; a single message is a batch of one. The gateway relays batches
// unchanged, so every receiver can check who wrote each message.

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"

namespace aegis::protocol {

using MessageId = std::array<std::uint8_t, 16>;

enum class Priority : std::uint8_t { critical = 0, high = 1, normal = 2, low = 3 };
enum class Kind : std::uint8_t { event = 0, request = 1, reply = 2, ack = 3, heartbeat = 4 };

// A request or reply matters only while its requester waits (it may ask again after its timeout),
// a heartbeat only until the next one (it expires after two intervals): the stores commit these
// without an fsync, so they survive a killed process but not a power loss, and neither a round
// trip nor a heartbeat waits for the disk (PROTOCOL.md §6).
[[nodiscard]] constexpr bool short_lived(Kind kind) {
    return kind == Kind::request || kind == Kind::reply || kind == Kind::heartbeat;
}
// True when any of `messages` (anything with a `kind`) is not short_lived: a commit holding it is
// fsync'd.
template <typename Messages>
[[nodiscard]] bool any_needs_fsync(const Messages& messages) {
    return std::any_of(std::begin(messages), std::end(messages),
                       [](const auto& message) { return !short_lived(message.kind); });
}

[[nodiscard]] std::string_view to_string(Priority priority);
[[nodiscard]] std::optional<Priority> parse_priority(std::string_view text);
[[nodiscard]] std::string_view to_string(Kind kind);

inline constexpr std::size_t kMaxHeaders = 64;
inline constexpr std::size_t kMaxPayloadBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxBatchMessages = 4096;
inline constexpr std::size_t kMaxChannelBytes = 255;  // as channel::kMaxNameLength
inline constexpr std::size_t kMaxHeaderKeyBytes = 255;
inline constexpr std::size_t kMaxHeaderValueBytes = 64 * 1024;
// A whole encoded batch: one largest payload plus room for the rest.
inline constexpr std::size_t kMaxBatchBytes = kMaxPayloadBytes + 1024 * 1024;
inline constexpr std::size_t kMaxOriginIdBytes = 255;
// A batch's bytes besides its messages, at most: format version, channel, origin, origin id,
// count and signature (§5 of PROTOCOL.md).
inline constexpr std::size_t kMaxBatchFixedBytes =
    1 + 2 + kMaxChannelBytes + crypto::kPublicKeySize + 1 + kMaxOriginIdBytes + 2 + crypto::kSignatureSize;

// One message's bytes in an encoded batch: its fixed fields, its headers and its payload.
[[nodiscard]] std::size_t encoded_message_bytes(const std::vector<std::pair<std::string, std::string>>& headers,
                                                std::size_t payload_bytes);
// Whether a batch of this one message fits kMaxBatchBytes, whatever the channel and origin id.
[[nodiscard]] inline bool fits_one_batch(const std::vector<std::pair<std::string, std::string>>& headers,
                                         std::size_t payload_bytes) {
    return payload_bytes <= kMaxPayloadBytes &&
           kMaxBatchFixedBytes + encoded_message_bytes(headers, payload_bytes) <= kMaxBatchBytes;
}

// One message. `channel`, `origin` and `origin_id` are shared by every message of a batch.
struct Envelope {
    MessageId id{};  // 128-bit random
    std::string channel;
    crypto::PublicKey origin{};      // the signer's Ed25519 key
    std::string origin_id;           // the signer's id as the gateway assigned it
    std::uint64_t sequence = 0;      // per-origin, increasing
    std::uint64_t timestamp_ms = 0;  // Unix time the origin created it
    std::uint64_t expires_ms = 0;    // Unix time after which it is dropped; 0 = never
    Priority priority = Priority::normal;
    Kind kind = Kind::event;
    MessageId correlation{};                                   // the request a reply answers; zero when none
    std::vector<std::pair<std::string, std::string>> headers;  // in the order given
    Bytes payload;

    bool operator==(const Envelope&) const = default;
};

// The batch format (PROTOCOL.md 5): the version byte of the canonical encoding, and what the
// origin signs. Every reader takes both; a publisher signs kBatchFormatWhole unless it is told
// (aegis-connect --batch-format 2) that every receiver of its fleet reads kBatchFormatDigest.
inline constexpr std::uint8_t kBatchFormatWhole = 1;   // Sign("aegis/1 batch" || B)
inline constexpr std::uint8_t kBatchFormatDigest = 2;  // Sign("aegis/1 batch digest" || H(B)): one fast hash over B
// Whether `format` is one of the two (wide, so an option's value is checked before narrowing).
[[nodiscard]] constexpr bool known_batch_format(std::uint64_t format) {
    return format == kBatchFormatWhole || format == kBatchFormatDigest;
}

struct SignedBatch {
    std::vector<Envelope> messages;
    crypto::Signature signature{};
    std::uint8_t format = kBatchFormatWhole;

    bool operator==(const SignedBatch&) const = default;
};

// A fresh message id in the UUIDv7 layout (RFC 9562): the creation time `now_ms` (Unix ms, 48
// bits) first, then 74 random bits. Ids made later sort later, so the stores that index them
// append to their indexes instead of touching a random page per message.
[[nodiscard]] MessageId new_message_id(std::uint64_t now_ms);

// The bytes the origin signs, B being the batch's canonical encoding without the signature:
// "aegis/1 batch" || B in format 1, "aegis/1 batch digest" || H(B) in format 2. Fails
// (Reason::malformed) when messages differ in channel, origin or origin id, or a field is over
// its limit.
[[nodiscard]] Result<Bytes> signing_input(const std::vector<Envelope>& messages,
                                          std::uint8_t format = kBatchFormatWhole);
// Signs a batch in `format`; every message's `origin` must equal the key's public key.
[[nodiscard]] Result<SignedBatch> sign_batch(std::vector<Envelope> messages, const crypto::SigningKey& key,
                                             std::uint8_t format = kBatchFormatWhole);
// Checks the batch's signature against the origin key it names (Reason::bad_signature).
[[nodiscard]] Result<void> verify_batch(const SignedBatch& batch);

// The wire form: canonical encoding followed by the 64-byte signature. For a batch made by
// sign_batch or decode_batch; channel, origin and origin id are taken from the first message.
[[nodiscard]] Bytes encode_batch(const SignedBatch& batch);
// Parses the wire form; checks structure and limits, not the signature (Reason::malformed).
[[nodiscard]] Result<SignedBatch> decode_batch(ByteView bytes);

}  // namespace aegis::protocol
