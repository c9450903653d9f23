#pragma once
// An Aegis client session driven by hand over a Peer: the library's own handshake, record
// layer and frames, with the raw handshake messages and records kept so they can be replayed,
// reordered or altered.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/record.h"
#include "wire.h"

namespace aegis::attack {

struct Target {
    std::uint16_t port = 0;
    const crypto::SigningKey* identity = nullptr;
    crypto::PublicKey gateway_key{};
};

// ClientHello as the real broker sends it to 127.0.0.1:port.
[[nodiscard]] protocol::ClientHandshake client_handshake(const Target& target);

struct Session {
    std::unique_ptr<Peer> peer;
    std::optional<protocol::RecordLayer> records;
    protocol::Accepted grant;
    Bytes client_hello;  // message 1 as sent
    Bytes client_auth;   // message 3 as sent

    // One record carrying `frame`, not yet sent.
    [[nodiscard]] Bytes seal(const protocol::Frame& frame);
    [[nodiscard]] Result<void> send(const protocol::Frame& frame, Ms timeout);
    // The next frame from the gateway; an Error when the connection ended or nothing came.
    [[nodiscard]] Result<protocol::Frame> next_frame(Ms timeout);
};

[[nodiscard]] Result<Session> establish(Wire& wire, const Target& target, Ms timeout);

// A subscribe or publish frame with the given request id.
[[nodiscard]] protocol::Frame subscribe_frame(std::uint32_t request_id, std::vector<std::string> patterns);
[[nodiscard]] protocol::Frame publish_frame(std::uint32_t request_id, Bytes batch);
// One message to `channel` signed by `signer`, claiming `origin_id`, encoded for the wire.
[[nodiscard]] Bytes signed_batch(const crypto::SigningKey& signer, std::string origin_id, std::string channel,
                                 std::string payload, const protocol::MessageId* id = nullptr);

// "error access_denied (request 7): text", "suback (request 3)", ... for reports.
[[nodiscard]] std::string describe(const protocol::Frame& frame);
// The reason of a handshake Alert (type 5), or nullopt when `message` is not one.
[[nodiscard]] std::optional<protocol::Reason> alert_reason(ByteView message);

}  // namespace aegis::attack
