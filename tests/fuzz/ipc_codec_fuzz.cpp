// The local socket's framing (PROTOCOL.md §8.2) from a client of the broker. The mode byte sets
// the size of the chunks the bytes arrive in. Invariants: a reader that reports a
// framing-breaking error stays broken; every frame it yields re-encodes and decodes to the same
// header and payload; its header goes on to parse_request as the broker does, and a "messages"
// event to parse_message_batch as a subscriber does: what reads holds `count` messages whose
// payloads are parts of the frame's payload.

#include "fuzz_support.h"
#include "ipc/codec.h"
#include "ipc/messages.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

void on_frame(const ipc::Frame& frame) {
    (void)ipc::parse_request(frame.header);
    if (frame.header.value("event", nlohmann::json()) == "messages") {
        const auto batch = ipc::parse_message_batch(frame.header, frame.payload);
        if (const auto* messages = std::get_if<std::vector<ipc::DeliveredMessage>>(&batch)) {
            check(!messages->empty() && messages->size() == frame.header["count"].get<std::size_t>());
            std::size_t bytes = 0;
            for (const auto& message : *messages) bytes += message.payload.size();
            check(bytes <= frame.payload.size());
        }
    }
    const Bytes encoded = ipc::encode_frame(frame.header, frame.payload);
    const auto again = ipc::decode_frame(encoded);
    const auto* decoded = std::get_if<ipc::Frame>(&again);
    check(decoded != nullptr && decoded->header == frame.header && decoded->payload == frame.payload);
}

// Takes frames until more bytes are needed; false once the reader is broken.
bool drain(ipc::FrameReader& reader) {
    while (true) {
        auto next = reader.next();
        if (std::holds_alternative<std::monostate>(next)) return true;
        if (const auto* frame = std::get_if<ipc::Frame>(&next)) {
            on_frame(*frame);
            continue;
        }
        const auto& error = std::get<ipc::LocalError>(next);
        if (!ipc::breaks_framing(error.reason)) continue;
        check(reader.broken());
        check(std::holds_alternative<ipc::LocalError>(reader.next()));
        return false;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    InputCursor input(data, size);
    const std::size_t chunk = std::size_t{input.byte()} + 1;
    const ByteView stream = input.rest();

    const auto whole = ipc::decode_frame(stream);
    if (const auto* frame = std::get_if<ipc::Frame>(&whole)) on_frame(*frame);

    ipc::FrameReader reader(64 * 1024);
    for (std::size_t offset = 0; offset < stream.size(); offset += chunk) {
        reader.feed(stream.subspan(offset, std::min(chunk, stream.size() - offset)));
        if (!drain(reader)) return 0;
    }
    return 0;
}
