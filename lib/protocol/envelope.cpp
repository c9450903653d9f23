#include "protocol/envelope.h"

#include <fmt/format.h>

#include "core/wire.h"
#include "protocol/reason.h"

namespace aegis::protocol {

namespace {

constexpr std::string_view kBatchSignatureLabel = "aegis/1 batch";
constexpr std::string_view kBatchDigestSignatureLabel = "aegis/1 batch digest";
constexpr std::size_t kMaxCanonicalBytes = kMaxBatchBytes - crypto::kSignatureSize;

Error malformed(std::string_view what) {
    return protocol_error(Reason::malformed, what);
}

bool valid_priority(std::uint8_t value) {
    return value <= static_cast<std::uint8_t>(Priority::low);
}
bool valid_kind(std::uint8_t value) {
    return value <= static_cast<std::uint8_t>(Kind::heartbeat);
}

Result<void> check_message(const Envelope& message, const Envelope& first) {
    if (message.channel != first.channel) return malformed("a batch goes to one channel");
    if (message.origin != first.origin || message.origin_id != first.origin_id) {
        return malformed("a batch comes from one origin");
    }
    if (message.headers.size() > kMaxHeaders) return malformed(fmt::format("more than {} headers", kMaxHeaders));
    for (const auto& [key, value] : message.headers) {
        if (key.empty() || key.size() > kMaxHeaderKeyBytes) return malformed("header name empty or too long");
        if (value.size() > kMaxHeaderValueBytes) return malformed("header value too long");
    }
    if (message.payload.size() > kMaxPayloadBytes) {
        return protocol_error(Reason::too_large, fmt::format("payload over {} bytes", kMaxPayloadBytes));
    }
    if (!valid_priority(static_cast<std::uint8_t>(message.priority))) return malformed("unknown priority");
    if (!valid_kind(static_cast<std::uint8_t>(message.kind))) return malformed("unknown kind");
    return {};
}

Result<void> check_batch(const std::vector<Envelope>& messages) {
    if (messages.empty()) return malformed("a batch holds at least one message");
    if (messages.size() > kMaxBatchMessages) {
        return protocol_error(Reason::too_large, fmt::format("more than {} messages in a batch", kMaxBatchMessages));
    }
    const auto& first = messages.front();
    if (first.channel.empty() || first.channel.size() > kMaxChannelBytes) {
        return malformed("channel name empty or too long");
    }
    if (first.origin_id.size() > kMaxOriginIdBytes) return malformed("origin id too long");
    for (const auto& message : messages) {
        if (auto checked = check_message(message, first); !checked) return checked.take_error();
    }
    return {};
}

// The canonical encoding; the caller has checked the batch (or it came from decode_batch).
void write_canonical(WireWriter& out, const std::vector<Envelope>& messages, std::uint8_t format) {
    const auto& first = messages.front();
    out.u8(format);
    out.text16(first.channel);
    out.raw(first.origin);
    out.text8(first.origin_id);
    out.u16(static_cast<std::uint16_t>(messages.size()));
    for (const auto& message : messages) {
        out.raw(message.id);
        out.u64(message.sequence);
        out.u64(message.timestamp_ms);
        out.u64(message.expires_ms);
        out.u8(static_cast<std::uint8_t>(message.priority));
        out.u8(static_cast<std::uint8_t>(message.kind));
        out.raw(message.correlation);
        out.u16(static_cast<std::uint16_t>(message.headers.size()));
        for (const auto& [key, value] : message.headers) {
            out.text16(key);
            out.bytes32(as_bytes(value));
        }
        out.bytes32(message.payload);
    }
}

Result<Bytes> canonical(const std::vector<Envelope>& messages, std::uint8_t format) {
    if (!known_batch_format(format)) return malformed(fmt::format("unknown batch format {}", format));
    if (auto checked = check_batch(messages); !checked) return checked.take_error();
    WireWriter out;
    write_canonical(out, messages, format);
    if (out.size() > kMaxCanonicalBytes) {
        return protocol_error(Reason::too_large, fmt::format("batch over {} bytes", kMaxBatchBytes));
    }
    return out.take();
}

bool read_message(WireReader& in, Envelope& message) {
    std::uint8_t priority = 0;
    std::uint8_t kind = 0;
    std::uint16_t header_count = 0;
    if (!in.raw(message.id) || !in.u64(message.sequence) || !in.u64(message.timestamp_ms) ||
        !in.u64(message.expires_ms) || !in.u8(priority) || !in.u8(kind) || !in.raw(message.correlation) ||
        !in.u16(header_count)) {
        return false;
    }
    if (!valid_priority(priority) || !valid_kind(kind) || header_count > kMaxHeaders) return false;
    message.priority = static_cast<Priority>(priority);
    message.kind = static_cast<Kind>(kind);
    message.headers.reserve(header_count);
    for (std::uint16_t i = 0; i < header_count; ++i) {
        std::string key;
        ByteView value;
        if (!in.text16(key) || !in.bytes32(value)) return false;
        if (key.empty() || key.size() > kMaxHeaderKeyBytes || value.size() > kMaxHeaderValueBytes) return false;
        message.headers.emplace_back(std::move(key), std::string(as_text(value)));
    }
    ByteView payload;
    if (!in.bytes32(payload) || payload.size() > kMaxPayloadBytes) return false;
    message.payload.assign(payload.begin(), payload.end());
    return true;
}

}  // namespace

std::size_t encoded_message_bytes(const std::vector<std::pair<std::string, std::string>>& headers,
                                  std::size_t payload_bytes) {
    // id, sequence, timestamp, expiry, priority, kind, correlation, header count; payload length
    std::size_t bytes = 16 + 8 + 8 + 8 + 1 + 1 + 16 + 2 + 4 + payload_bytes;
    for (const auto& [key, value] : headers) bytes += 2 + key.size() + 4 + value.size();
    return bytes;
}

std::string_view to_string(Priority priority) {
    switch (priority) {
        case Priority::critical: return "critical";
        case Priority::high: return "high";
        case Priority::normal: return "normal";
        case Priority::low: return "low";
    }
    return "unknown";
}

std::optional<Priority> parse_priority(std::string_view text) {
    for (const auto priority : {Priority::critical, Priority::high, Priority::normal, Priority::low}) {
        if (text == to_string(priority)) return priority;
    }
    return std::nullopt;
}

std::string_view to_string(Kind kind) {
    switch (kind) {
        case Kind::event: return "event";
        case Kind::request: return "request";
        case Kind::reply: return "reply";
        case Kind::ack: return "ack";
        case Kind::heartbeat: return "heartbeat";
    }
    return "unknown";
}

MessageId new_message_id(std::uint64_t now_ms) {
    MessageId id{};
    crypto::random_bytes_buffered(id);
    for (std::size_t i = 0; i < 6; ++i) id[i] = static_cast<std::uint8_t>(now_ms >> (40 - 8 * i));
    id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0f));  // version 7
    id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3f));  // variant 0b10
    return id;
}

Result<Bytes> signing_input(const std::vector<Envelope>& messages, std::uint8_t format) {
    auto body = canonical(messages, format);
    if (!body) return body.take_error();
    WireWriter out;
    if (format == kBatchFormatDigest) {
        // Ed25519 hashes what it signs twice with SHA-512; one BLAKE2b pass over B is faster.
        out.raw(as_bytes(kBatchDigestSignatureLabel));
        out.raw(crypto::blake2b(*body));
    } else {
        out.raw(as_bytes(kBatchSignatureLabel));
        out.raw(*body);
    }
    return out.take();
}

Result<SignedBatch> sign_batch(std::vector<Envelope> messages, const crypto::SigningKey& key, std::uint8_t format) {
    auto input = signing_input(messages, format);
    if (!input) return input.take_error();
    if (messages.front().origin != key.public_key()) return malformed("the batch origin is not the signing key");
    SignedBatch batch;
    batch.signature = key.sign(*input);
    batch.messages = std::move(messages);
    batch.format = format;
    return batch;
}

Result<void> verify_batch(const SignedBatch& batch) {
    auto input = signing_input(batch.messages, batch.format);
    if (!input) return input.take_error();
    if (!crypto::verify(batch.messages.front().origin, *input, batch.signature)) {
        return protocol_error(Reason::bad_signature, fmt::format("batch signature does not verify for {}",
                                                                 crypto::fingerprint(batch.messages.front().origin)));
    }
    return {};
}

Bytes encode_batch(const SignedBatch& batch) {
    WireWriter out;
    if (!batch.messages.empty()) write_canonical(out, batch.messages, batch.format);
    out.raw(batch.signature);
    return out.take();
}

Result<SignedBatch> decode_batch(ByteView bytes) {
    if (bytes.size() > kMaxBatchBytes) return protocol_error(Reason::too_large, "batch too large");
    WireReader in(bytes);
    std::uint8_t version = 0;
    std::string channel;
    crypto::PublicKey origin{};
    std::string origin_id;
    std::uint16_t count = 0;
    if (!in.u8(version)) return malformed("empty batch");
    if (!known_batch_format(version)) return malformed(fmt::format("unknown batch format {}", version));
    if (!in.text16(channel) || !in.raw(origin) || !in.text8(origin_id) || !in.u16(count)) {
        return malformed("batch header truncated");
    }
    if (channel.empty() || channel.size() > kMaxChannelBytes) return malformed("channel name empty or too long");
    if (count == 0 || count > kMaxBatchMessages) return malformed("batch message count out of range");

    SignedBatch batch;
    batch.format = version;
    batch.messages.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        Envelope message;
        message.channel = channel;
        message.origin = origin;
        message.origin_id = origin_id;
        if (!read_message(in, message)) return malformed(fmt::format("batch message {} malformed", i));
        batch.messages.push_back(std::move(message));
    }
    if (!in.raw(batch.signature)) return malformed("batch signature truncated");
    if (!in.at_end()) return malformed("trailing bytes after the batch signature");
    return batch;
}

}  // namespace aegis::protocol
