// Attack 2: records of an authenticated session replayed, reordered, truncated and bit-flipped.
// The counter nonce is implicit, so each must fail to open, and the gateway must end the
// session at once without acting on it.

#include "attacks.h"
#include "protocol/reason.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

namespace {

enum class Tamper : std::uint8_t { replay, reorder, truncate, flip };

std::string_view name(Tamper tamper) {
    switch (tamper) {
        case Tamper::replay: return "replayed";
        case Tamper::reorder: return "reordered";
        case Tamper::truncate: return "truncated";
        case Tamper::flip: return "bit-flipped";
    }
    return "?";
}

}  // namespace

int record_tampering(const Options& options) {
    Report report;
    Wire wire;
    const Target target{options.port, &*options.identity, options.gateway_key};
    const Ms step{5000};
    const std::string pattern = fmt::format("backend.{}.policies", options.agent_id);

    for (const auto tamper : {Tamper::replay, Tamper::reorder, Tamper::truncate, Tamper::flip}) {
        auto session = establish(wire, target, step);
        if (!report.expect(session.ok(), fmt::format("{}: a session is established", name(tamper)))) return 2;
        const Bytes first = session->seal(subscribe_frame(1, {pattern}));
        report.expect(session->peer->send(first, step).ok(), fmt::format("{}: a genuine record is sent", name(tamper)));
        auto answer = session->next_frame(step);
        report.expect(answer && answer->type == protocol::FrameType::suback && answer->request_id == 1,
                      fmt::format("{}: the genuine record is answered with a suback", name(tamper)));

        Bytes attack;
        switch (tamper) {
            case Tamper::replay: attack = first; break;
            case Tamper::reorder: {
                (void)session->seal(subscribe_frame(2, {pattern}));  // sealed, never sent: the next one skips it
                attack = session->seal(subscribe_frame(3, {pattern}));
                break;
            }
            case Tamper::truncate: {
                attack = session->seal(subscribe_frame(2, {pattern}));
                attack.pop_back();
                break;
            }
            case Tamper::flip: {
                attack = session->seal(subscribe_frame(2, {pattern}));
                attack[attack.size() / 2] ^= 0x01;
                break;
            }
        }
        report.expect(session->peer->send(attack, step).ok(), fmt::format("{}: the record is sent", name(tamper)));
        const auto after = session->peer->receive(step);
        report.expect(after.ending == Ending::closed,
                      fmt::format("{}: the gateway closes the session without an answer ({})", name(tamper),
                                  after.ending == Ending::message  ? "got a message"
                                  : after.ending == Ending::closed ? after.close_reason
                                                                   : "still open"));
    }

    auto fresh = establish(wire, target, step);
    report.expect(fresh.ok(), "a legitimate session is established afterwards");
    if (fresh) {
        report.expect(fresh->send(subscribe_frame(9, {pattern}), step).ok(), "it subscribes");
        auto answer = fresh->next_frame(step);
        report.expect(answer && answer->type == protocol::FrameType::suback, "and gets its suback");
    }
    return report.exit_code();
}

}  // namespace aegis::attack
