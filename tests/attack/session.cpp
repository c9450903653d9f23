#include "session.h"

#include "core/clock.h"
#include "net/websocket.h"
#include "protocol/reason.h"

namespace aegis::attack {

protocol::ClientHandshake client_handshake(const Target& target) {
    protocol::ClientOptions options;
    options.identity = target.identity;
    options.pinned_server_keys = {target.gateway_key};
    const auto url = net::parse_url(fmt::format("ws://127.0.0.1:{}/", target.port));
    options.server_name = url ? url->server_name : fmt::format("127.0.0.1:{}", target.port);
    return protocol::ClientHandshake(std::move(options));
}

Bytes Session::seal(const protocol::Frame& frame) {
    return records->seal(protocol::encode_frame(frame), unix_time_ms());
}

Result<void> Session::send(const protocol::Frame& frame, Ms timeout) {
    return peer->send(seal(frame), timeout);
}

Result<protocol::Frame> Session::next_frame(Ms timeout) {
    auto received = peer->receive(timeout);
    if (received.ending == Ending::timed_out)
        return make_error(ExitCode::timeout, "no frame within {} ms", timeout.count());
    if (received.ending == Ending::closed)
        return make_error(ExitCode::unreachable, "closed by the gateway ({})", received.close_reason);
    auto plaintext = records->open(received.message);
    if (!plaintext) return plaintext.take_error();
    return protocol::decode_frame(plaintext.value());
}

Result<Session> establish(Wire& wire, const Target& target, Ms timeout) {
    auto peer = wire.websocket(target.port, timeout);
    if (!peer) return peer.take_error();
    Session session;
    session.peer = std::move(peer.value());
    auto handshake = client_handshake(target);
    session.client_hello = handshake.start(unix_time_ms());
    if (auto sent = session.peer->send(session.client_hello, timeout); !sent) return sent.take_error();
    auto hello = session.peer->receive(timeout);
    if (hello.ending != Ending::message) return make_error(ExitCode::unreachable, "no ServerHello");
    auto auth = handshake.on_server_hello(hello.message);
    if (!auth) return auth.take_error();
    session.client_auth = auth.value();
    if (auto sent = session.peer->send(session.client_auth, timeout); !sent) return sent.take_error();
    auto finish = session.peer->receive(timeout);
    if (finish.ending != Ending::message) return make_error(ExitCode::unreachable, "no ServerFinish");
    auto accepted = handshake.on_server_finish(finish.message);
    if (!accepted) return accepted.take_error();
    session.grant = accepted.value();
    session.records.emplace(handshake.take_keys(), protocol::RekeyPolicy{}, unix_time_ms());
    return session;
}

protocol::Frame subscribe_frame(std::uint32_t request_id, std::vector<std::string> patterns) {
    protocol::Frame frame;
    frame.type = protocol::FrameType::subscribe;
    frame.request_id = request_id;
    frame.patterns = std::move(patterns);
    return frame;
}

protocol::Frame publish_frame(std::uint32_t request_id, Bytes batch) {
    protocol::Frame frame;
    frame.type = protocol::FrameType::publish;
    frame.request_id = request_id;
    frame.batch = std::move(batch);
    return frame;
}

Bytes signed_batch(const crypto::SigningKey& signer, std::string origin_id, std::string channel, std::string payload,
                   const protocol::MessageId* id) {
    protocol::Envelope message;
    message.id = id ? *id : protocol::new_message_id(aegis::unix_time_ms());
    message.channel = std::move(channel);
    message.origin = signer.public_key();
    message.origin_id = std::move(origin_id);
    message.sequence = unix_time_ms();
    message.timestamp_ms = unix_time_ms();
    message.payload.assign(payload.begin(), payload.end());
    auto batch = protocol::sign_batch({std::move(message)}, signer);
    return batch ? protocol::encode_batch(batch.value()) : Bytes{};
}

std::string describe(const protocol::Frame& frame) {
    using protocol::FrameType;
    switch (frame.type) {
        case FrameType::puback: return fmt::format("puback (request {})", frame.request_id);
        case FrameType::suback: return fmt::format("suback (request {})", frame.request_id);
        case FrameType::error:
            return fmt::format("error {} (request {}): {}", protocol::name(frame.reason), frame.request_id, frame.text);
        case FrameType::goodbye: return fmt::format("goodbye {}: {}", protocol::name(frame.reason), frame.text);
        case FrameType::deliver: return fmt::format("deliver {}", frame.sequence);
        default: return fmt::format("frame {:#04x}", static_cast<unsigned>(frame.type));
    }
}

std::optional<protocol::Reason> alert_reason(ByteView message) {
    if (message.size() < 3 || message[0] != static_cast<std::uint8_t>(protocol::HandshakeType::alert))
        return std::nullopt;
    return static_cast<protocol::Reason>((message[1] << 8) | message[2]);
}

}  // namespace aegis::attack
