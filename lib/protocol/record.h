#pragma once
// The record layer of PROTOCOL.md §4: after the handshake every WebSocket binary message is
// one ChaCha20-Poly1305 record under the sender's direction key, with an implicit 64-bit
// counter nonce. A replayed, dropped, reordered or altered record fails to open, and the
// session must then be closed. Keys are updated by record count and by age.

#include <cstdint>

#include "core/bytes.h"
#include "core/result.h"
#include "protocol/handshake.h"

namespace aegis::protocol {

struct RekeyPolicy {
    std::uint64_t max_records = 1ULL << 20;  // per key, per direction
    std::uint64_t max_age_ms = 3'600'000;    // per key, per direction
};

class RecordLayer {
public:
    RecordLayer(SessionKeys keys, RekeyPolicy policy, std::uint64_t now_ms);

    // One record carrying `plaintext`. When the policy says so the record also announces a key
    // update, and the next record is sealed under the next key.
    [[nodiscard]] Bytes seal(ByteView plaintext, std::uint64_t now_ms);
    // The plaintext of the next record from the peer; follows the peer's key updates. Any
    // failure is Reason::bad_signature or Reason::malformed, and the session is over.
    [[nodiscard]] Result<Bytes> open(ByteView record);

    // The next seal() announces a key update whatever the policy says.
    void request_rekey() { rekey_requested_ = true; }

    [[nodiscard]] std::uint64_t records_sent() const { return records_sent_; }
    [[nodiscard]] std::uint64_t records_received() const { return records_received_; }
    [[nodiscard]] std::uint64_t rekeys_sent() const { return rekeys_sent_; }
    [[nodiscard]] std::uint64_t rekeys_received() const { return rekeys_received_; }

private:
    crypto::SymmetricKey send_key_;
    crypto::SymmetricKey receive_key_;
    RekeyPolicy policy_;
    std::uint64_t send_counter_ = 0;
    std::uint64_t receive_counter_ = 0;
    std::uint64_t send_key_since_ms_ = 0;
    bool rekey_requested_ = false;
    std::uint64_t records_sent_ = 0;
    std::uint64_t records_received_ = 0;
    std::uint64_t rekeys_sent_ = 0;
    std::uint64_t rekeys_received_ = 0;
    bool receive_failed_ = false;  // one bad record ends the receiving direction for good
};

}  // namespace aegis::protocol
