#pragma once
// Hashing 128-bit message ids for unordered containers. Ids are UUIDv7 (the first 6 bytes are
// the time in milliseconds, most of the rest random), so neither half alone is a good hash:
// both are mixed.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "protocol/envelope.h"

namespace aegis::protocol {

struct MessageIdHash {
    std::size_t operator()(const MessageId& id) const noexcept {
        std::uint64_t high = 0;
        std::uint64_t low = 0;
        std::memcpy(&high, id.data(), sizeof(high));
        std::memcpy(&low, id.data() + sizeof(high), sizeof(low));
        return static_cast<std::size_t>((high * 0x9e3779b97f4a7c15ull) ^ low);
    }
};

}  // namespace aegis::protocol
