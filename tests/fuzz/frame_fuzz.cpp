// Session frames (PROTOCOL.md §6) from inside records. Invariants: a frame that decodes keeps
// within the pattern limit and re-encodes to exactly the input bytes; a publish or deliver
// frame's batch goes on to the batch parser as the gateway and broker do.

#include "fuzz_support.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ByteView input(data, size);
    auto frame = protocol::decode_frame(input);
    if (!frame) return 0;

    check(frame->patterns.size() <= protocol::kMaxPatternsPerFrame);
    const Bytes encoded = protocol::encode_frame(*frame);
    check(std::equal(encoded.begin(), encoded.end(), input.begin(), input.end()));

    if (frame->type == protocol::FrameType::publish || frame->type == protocol::FrameType::deliver) {
        if (auto batch = protocol::decode_batch(frame->batch)) (void)protocol::verify_batch(*batch);
    }
    return 0;
}
