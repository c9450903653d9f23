#include "protocol/record.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace aegis::protocol {

namespace {

constexpr std::string_view kRekeyLabel = "aegis/1 rekey";
// Bit 0 of a record's first plaintext byte: the sender switches keys after this record.
constexpr std::uint8_t kKeyUpdateFlag = 0x01;
// Far below 2^64, so a counter never wraps even if a policy asks for "never".
constexpr std::uint64_t kHardMaxRecordsPerKey = 1ULL << 48;

void ratchet(crypto::SymmetricKey& key) {
    key = crypto::kdf(key.view(), kRekeyLabel, {});
}

}  // namespace

RecordLayer::RecordLayer(SessionKeys keys, RekeyPolicy policy, std::uint64_t now_ms)
    : send_key_(std::move(keys.send)),
      receive_key_(std::move(keys.receive)),
      policy_(policy),
      send_key_since_ms_(now_ms) {}

Bytes RecordLayer::seal(ByteView plaintext, std::uint64_t now_ms) {
    const auto max_records = std::clamp<std::uint64_t>(policy_.max_records, 1, kHardMaxRecordsPerKey);
    const bool too_many = send_counter_ + 1 >= max_records;
    const bool too_old = now_ms >= send_key_since_ms_ && now_ms - send_key_since_ms_ >= policy_.max_age_ms;
    const bool update = rekey_requested_ || too_many || too_old;

    Bytes plain;
    plain.reserve(plaintext.size() + 1);
    plain.push_back(update ? kKeyUpdateFlag : 0);
    plain.insert(plain.end(), plaintext.begin(), plaintext.end());
    auto record = crypto::aead_seal(send_key_, send_counter_, {}, plain);
    crypto::secure_wipe(plain.data(), plain.size());
    ++records_sent_;
    if (update) {
        ratchet(send_key_);
        send_counter_ = 0;
        send_key_since_ms_ = now_ms;
        rekey_requested_ = false;
        ++rekeys_sent_;
    } else {
        ++send_counter_;
    }
    return record;
}

Result<Bytes> RecordLayer::open(ByteView record) {
    if (receive_failed_) return protocol_error(Reason::bad_signature, "the session already received a bad record");
    if (record.size() < 1 + crypto::kAeadTagSize) {
        receive_failed_ = true;
        return protocol_error(Reason::malformed, "record too short");
    }
    auto plain = crypto::aead_open(receive_key_, receive_counter_, {}, record);
    if (!plain) {
        receive_failed_ = true;
        return protocol_error(Reason::bad_signature,
                              "record does not decrypt (altered, replayed, dropped or reordered)");
    }
    const auto flags = (*plain)[0];
    if ((flags & ~kKeyUpdateFlag) != 0) {
        receive_failed_ = true;
        return protocol_error(Reason::malformed, "record has unknown flags");
    }
    ++records_received_;
    if ((flags & kKeyUpdateFlag) != 0) {
        ratchet(receive_key_);
        receive_counter_ = 0;
        ++rekeys_received_;
    } else if (++receive_counter_ >= kHardMaxRecordsPerKey) {
        // The sender must have updated its key long before; going on would near counter reuse.
        receive_failed_ = true;
        return protocol_error(Reason::malformed, "peer never updated its key");
    }
    plain->erase(plain->begin());
    return std::move(*plain);
}

}  // namespace aegis::protocol
