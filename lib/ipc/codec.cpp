#include "ipc/codec.h"

#include <fmt/format.h>

#include "core/wire.h"

namespace aegis::ipc {

Bytes encode_frame(const nlohmann::json& header, ByteView payload) {
    Bytes out;
    append_frame(out, header, payload);
    return out;
}

void append_frame(Bytes& out, const nlohmann::json& header, ByteView payload) {
    const std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (out.empty()) out.reserve(kPrefixBytes + text.size() + payload.size());  // else it grows geometrically
    const auto put_u32 = [&out](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
    };
    put_u32(static_cast<std::uint32_t>(4 + text.size() + payload.size()));
    put_u32(static_cast<std::uint32_t>(text.size()));
    out.insert(out.end(), text.begin(), text.end());
    out.insert(out.end(), payload.begin(), payload.end());
}

FrameReader::FrameReader(std::uint32_t max_frame_bytes, std::uint32_t max_header_bytes)
    : max_frame_bytes_(max_frame_bytes), max_header_bytes_(max_header_bytes) {}

void FrameReader::feed(ByteView bytes) {
    // Drop consumed bytes only when they are most of the buffer: amortised O(1) per byte.
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

namespace {

[[nodiscard]] LocalError framing_error(LocalReason reason, std::string message) {
    return LocalError{reason, std::move(message)};
}

[[nodiscard]] Decoded parse_header(ByteView header_bytes, ByteView payload) {
    auto header = nlohmann::json::parse(header_bytes.begin(), header_bytes.end(), nullptr, false);
    if (header.is_discarded()) return LocalError{LocalReason::bad_json, "the frame header is not valid JSON"};
    if (!header.is_object()) return LocalError{LocalReason::bad_request, "the frame header is not a JSON object"};
    return Frame{std::move(header), Bytes(payload.begin(), payload.end())};
}

}  // namespace

Decoded FrameReader::next() {
    if (broken_) return *broken_;
    const ByteView pending(buffer_.data() + start_, buffer_.size() - start_);
    WireReader reader(pending);
    std::uint32_t total = 0;
    if (!reader.u32(total)) return std::monostate{};
    if (total > max_frame_bytes_) {
        broken_ = framing_error(LocalReason::frame_too_large,
                                fmt::format("frame of {} bytes is over the limit of {}", total, max_frame_bytes_));
        return *broken_;
    }
    if (total < 4) {
        broken_ = framing_error(LocalReason::bad_frame,
                                fmt::format("frame length {} is shorter than its header length field", total));
        return *broken_;
    }
    std::uint32_t header_length = 0;
    if (!reader.u32(header_length)) return std::monostate{};
    if (header_length > total - 4 || header_length > max_header_bytes_) {
        broken_ = framing_error(LocalReason::bad_frame,
                                fmt::format("header length {} does not fit a frame of {} bytes", header_length, total));
        return *broken_;
    }
    if (pending.size() < 4 + std::size_t{total}) return std::monostate{};
    const auto header_bytes = pending.subspan(kPrefixBytes, header_length);
    const auto payload = pending.subspan(kPrefixBytes + header_length, total - 4 - header_length);
    start_ += 4 + std::size_t{total};
    auto decoded = parse_header(header_bytes, payload);
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    }
    return decoded;
}

bool FrameReader::ready() const {
    if (broken_) return true;
    const ByteView pending(buffer_.data() + start_, buffer_.size() - start_);
    WireReader reader(pending);
    std::uint32_t total = 0;
    if (!reader.u32(total)) return false;
    if (total > max_frame_bytes_ || total < 4 || pending.size() >= 4 + std::size_t{total}) return true;
    // A header length that does not fit is an error next() returns before the frame is whole.
    std::uint32_t header_length = 0;
    return reader.u32(header_length) && (header_length > total - 4 || header_length > max_header_bytes_);
}

Decoded decode_frame(ByteView bytes, std::uint32_t max_frame_bytes, std::uint32_t max_header_bytes) {
    FrameReader reader(max_frame_bytes, max_header_bytes);
    reader.feed(bytes);
    auto decoded = reader.next();
    if (std::holds_alternative<std::monostate>(decoded)) {
        return LocalError{LocalReason::bad_frame, fmt::format("truncated frame ({} bytes)", bytes.size())};
    }
    if (!std::holds_alternative<LocalError>(decoded) && reader.buffered() != 0) {
        return LocalError{LocalReason::bad_frame, fmt::format("{} bytes after the frame", reader.buffered())};
    }
    return decoded;
}

}  // namespace aegis::ipc
