// The record layer (PROTOCOL.md §4) with the test-vector traffic keys. Mode byte, then pieces
// (one length byte each):
//   0: each piece is a raw record from the network; once one fails, every later one must fail.
//   1: each piece is a payload the peer seals (rekeying every few records); each must open to
//      exactly that payload.
//   2: each piece is a record plaintext (flags || payload) sealed by hand under the key and
//      counter the receiver expects; it must open iff the flags are 0 or 1, and KEY_UPDATE must
//      move the receiver to KDF(k, "aegis/1 rekey", "").

#include "fuzz_support.h"
#include "protocol/record.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

protocol::SessionKeys keys(std::string_view send_hex, std::string_view receive_hex) {
    return {key_from_hex(send_hex), key_from_hex(receive_hex), {}};
}

void raw_records(protocol::RecordLayer& receiver, InputCursor& input) {
    bool failed = false;
    while (!input.empty()) {
        const auto opened = receiver.open(input.piece());
        if (failed) check(!opened.ok());
        if (!opened) failed = true;
    }
}

void peer_sealed(protocol::RecordLayer& receiver, InputCursor& input) {
    protocol::RecordLayer peer(keys(vectors::kS2c, vectors::kC2s), {3, 3'600'000}, vectors::kTimestamp);
    while (!input.empty()) {
        const ByteView payload = input.piece();
        const Bytes record = peer.seal(payload, vectors::kTimestamp);
        const auto opened = receiver.open(record);
        check(opened.ok() && std::equal(opened->begin(), opened->end(), payload.begin(), payload.end()));
    }
    check(receiver.rekeys_received() == peer.rekeys_sent());
}

void hand_sealed(protocol::RecordLayer& receiver, InputCursor& input) {
    crypto::SymmetricKey key = key_from_hex(vectors::kS2c);
    std::uint64_t counter = 0;
    bool failed = false;
    while (!input.empty()) {
        const ByteView plaintext = input.piece();
        const auto opened = receiver.open(crypto::aead_seal(key, counter, {}, plaintext));
        const bool well_formed = !plaintext.empty() && plaintext[0] <= 1;
        check(opened.ok() == (well_formed && !failed));
        if (!opened) {
            failed = true;
            continue;
        }
        check(std::equal(opened->begin(), opened->end(), plaintext.begin() + 1, plaintext.end()));
        ++counter;
        if (plaintext[0] == 1) {
            key = crypto::kdf(key.view(), "aegis/1 rekey", {});
            counter = 0;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    InputCursor input(data, size);
    const std::uint8_t mode = input.byte() % 3;
    protocol::RecordLayer receiver(keys(vectors::kC2s, vectors::kS2c), {}, vectors::kTimestamp);
    if (mode == 0) raw_records(receiver, input);
    if (mode == 1) peer_sealed(receiver, input);
    if (mode == 2) hand_sealed(receiver, input);
    return 0;
}
