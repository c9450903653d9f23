// Envelope batches (PROTOCOL.md §5) from the network. Invariants: a batch that decodes has
// between 1 and kMaxBatchMessages messages sharing one channel, origin and origin id, and
// re-encodes to exactly the input bytes (the encoding is canonical, so relayed signatures hold).

#include "fuzz_support.h"
#include "protocol/envelope.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ByteView input(data, size);
    auto batch = protocol::decode_batch(input);
    if (!batch) return 0;

    const auto& messages = batch->messages;
    check(!messages.empty() && messages.size() <= protocol::kMaxBatchMessages);
    for (const auto& message : messages) {
        check(message.channel == messages.front().channel);
        check(message.origin == messages.front().origin);
        check(message.origin_id == messages.front().origin_id);
        check(message.headers.size() <= protocol::kMaxHeaders);
        check(message.payload.size() <= protocol::kMaxPayloadBytes);
    }
    check(protocol::signing_input(messages).ok());
    (void)protocol::verify_batch(*batch);

    const Bytes encoded = protocol::encode_batch(*batch);
    check(std::equal(encoded.begin(), encoded.end(), input.begin(), input.end()));
    return 0;
}
