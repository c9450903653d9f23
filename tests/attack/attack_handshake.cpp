// Attack 1: a recorded handshake replayed. The client's first message (ClientHello) sent again
// on a new connection must be refused `replayed` before the gateway signs anything; its third
// (ClientAuth) sent again after a fresh ClientHello must fail to open under the new keys.

#include "attacks.h"
#include "core/clock.h"
#include "protocol/reason.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

int handshake_replay(const Options& options) {
    Report report;
    Wire wire;
    const Target target{options.port, &*options.identity, options.gateway_key};
    const Ms step{5000};

    auto recorded = establish(wire, target, step);
    if (!report.expect(recorded.ok(), "the recorded handshake is accepted")) return 2;
    const Bytes hello = recorded->client_hello;
    const Bytes auth = recorded->client_auth;
    recorded->peer.reset();

    // (a) ClientHello again, on a new connection.
    {
        auto peer = wire.websocket(options.port, step);
        if (!report.expect(peer.ok(), "a second connection is upgraded")) return 2;
        report.expect((*peer)->send(hello, step).ok(), "the recorded ClientHello is sent again");
        const auto answer = (*peer)->receive(step);
        const auto reason = answer.ending == Ending::message ? alert_reason(answer.message) : std::nullopt;
        report.expect(reason == protocol::Reason::replayed,
                      fmt::format("the replayed ClientHello gets an Alert 'replayed' (got {})",
                                  reason ? protocol::name(*reason) : "no alert"));
        report.expect((*peer)->receive(step).ending == Ending::closed, "the gateway closes the replaying connection");
    }

    // (b) a fresh ClientHello, then the recorded ClientAuth.
    {
        auto peer = wire.websocket(options.port, step);
        if (!report.expect(peer.ok(), "a third connection is upgraded")) return 2;
        auto handshake = client_handshake(target);
        report.expect((*peer)->send(handshake.start(unix_time_ms()), step).ok(), "a fresh ClientHello is sent");
        auto server_hello = (*peer)->receive(step);
        report.expect(server_hello.ending == Ending::message && handshake.on_server_hello(server_hello.message).ok(),
                      "the gateway answers the fresh ClientHello with a valid ServerHello");
        report.expect((*peer)->send(auth, step).ok(), "the recorded ClientAuth is sent instead of a new one");
        const auto answer = (*peer)->receive(step);
        const bool finish = answer.ending == Ending::message && !answer.message.empty() &&
                            answer.message[0] == static_cast<std::uint8_t>(protocol::HandshakeType::server_finish);
        report.expect(finish, "the gateway answers with a ServerFinish");
        report.expect(finish && !handshake.on_server_finish(answer.message).ok(),
                      "that ServerFinish is no acceptance (the recorded proof does not open under the new keys)");
        report.expect((*peer)->receive(step).ending == Ending::closed, "the gateway closes the connection");
    }

    // The gateway still serves a legitimate session.
    auto fresh = establish(wire, target, step);
    report.expect(fresh.ok(), fmt::format("a new legitimate handshake is accepted afterwards{}",
                                          fresh ? "" : ": " + fresh.error().message));
    return report.exit_code();
}

}  // namespace aegis::attack
