#pragma once
// Hashing 128-bit random message ids for unordered containers: the first 8 bytes are already
// uniformly random, so they are the hash.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "protocol/envelope.h"

namespace aegis::broker {

struct MessageIdHash {
    std::size_t operator()(const protocol::MessageId& id) const noexcept {
        std::uint64_t value = 0;
        std::memcpy(&value, id.data(), sizeof(value));
        return static_cast<std::size_t>(value);
    }
};

}  // namespace aegis::broker
