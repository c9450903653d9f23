// Attack 8: an authorized agent, talking to the gateway directly (no broker to sign for it),
// publishes batches on its own channel whose origin signature does not verify: one with the
// signature altered, one with the payload altered after signing, both with the message id of
// the genuine batch it publishes last. A gateway that verifies signatures (--verify-signatures)
// refuses the two with bad_signature; one that does not stores and acknowledges them, and the
// receiving brokers drop them (tests/cli/attack_test.sh checks that side). Either way the
// genuine batch is acknowledged and the session goes on.

#include <string>
#include <utility>
#include <vector>

#include "attacks.h"
#include "core/clock.h"
#include "protocol/reason.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

namespace {

constexpr std::size_t kSignatureBytes = 64;

}  // namespace

int forged_publish(const Options& options) {
    Report report;
    Wire wire;
    const Target target{options.port, &*options.identity, options.gateway_key};
    const Ms step{5000};
    auto session = establish(wire, target, step);
    if (!report.expect(session.ok(), "the agent's session is established")) return 2;

    const auto channel = fmt::format("agent.{}.forged", options.agent_id);
    const auto id = protocol::new_message_id(aegis::unix_time_ms());
    const auto genuine = signed_batch(*options.identity, options.agent_id, channel, "genuine", &id);
    Bytes signature = genuine;
    signature.back() ^= 0x01;
    Bytes payload = genuine;
    payload[payload.size() - kSignatureBytes - 1] ^= 0x01;  // the last payload byte: "genuind"

    std::uint32_t request = 200;
    const auto answer_to = [&](Bytes batch) -> std::optional<protocol::Frame> {
        const auto frame = publish_frame(++request, std::move(batch));
        if (!session->send(frame, step)) return std::nullopt;
        auto answer = session->next_frame(step);
        if (!answer || answer->request_id != frame.request_id) return std::nullopt;
        return answer.value();
    };
    const std::vector<std::pair<std::string, Bytes>> forgeries{{"origin signature altered", signature},
                                                               {"payload altered", payload}};
    for (const auto& [what, batch] : forgeries) {
        const auto answer = answer_to(batch);
        const auto text = answer ? describe(*answer) : std::string("no answer");
        if (options.gateway_verifies) {
            report.expect(answer && answer->type == protocol::FrameType::error &&
                              answer->reason == protocol::Reason::bad_signature,
                          fmt::format("{}: bad_signature ({})", what, text));
        } else {
            report.expect(answer && answer->type == protocol::FrameType::puback,
                          fmt::format("{}: puback, left to the receivers ({})", what, text));
        }
    }
    const auto answer = answer_to(genuine);
    report.expect(answer && answer->type == protocol::FrameType::puback,
                  fmt::format("genuine, the same message id: puback ({})", answer ? describe(*answer) : "no answer"));
    return report.exit_code();
}

}  // namespace aegis::attack
