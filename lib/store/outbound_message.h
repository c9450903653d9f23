#pragma once
// A row of the outbound queue (outbound_store.h): a message as a local tool gave it, waiting
// for the gateway's puback. Origin, origin id and sequence are filled in when it is sent.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "protocol/envelope.h"

namespace aegis::store {

struct OutboundMessage {
    protocol::MessageId id{};
    std::string channel;
    protocol::Priority priority = protocol::Priority::normal;
    protocol::Kind kind = protocol::Kind::event;
    protocol::MessageId correlation{};
    std::vector<std::pair<std::string, std::string>> headers;
    std::uint64_t timestamp_ms = 0;
    std::uint64_t expires_ms = 0;  // 0: never
    Bytes payload;
};

// How much one take from the queue may hold.
struct BatchLimits {
    std::size_t max_messages = 256;
    std::size_t max_bytes = 1024 * 1024;  // encoded message bytes; a single larger message goes alone
};

}  // namespace aegis::store
