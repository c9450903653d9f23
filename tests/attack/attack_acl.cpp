// Attack 6: an authorized agent, talking to the gateway directly (no broker to stop it first),
// publishes to channels that are not its own and subscribes to what it may not read. Every
// attempt must get its own typed error and leave the session usable.

#include "attacks.h"
#include "protocol/reason.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

int channel_access(const Options& options) {
    Report report;
    Wire wire;
    const Target target{options.port, &*options.identity, options.gateway_key};
    const Ms step{5000};
    auto session = establish(wire, target, step);
    if (!report.expect(session.ok(), "the agent's session is established")) return 2;
    const auto& me = options.agent_id;
    const auto& other = options.other_id;
    std::uint32_t request = 100;

    const auto answer_to = [&](protocol::Frame frame) -> std::optional<protocol::Frame> {
        const auto id = frame.request_id;
        if (!session->send(frame, step)) return std::nullopt;
        auto answer = session->next_frame(step);
        if (!answer || answer->request_id != id) return std::nullopt;
        return answer.value();
    };
    const auto expect_denied = [&](protocol::Frame frame, const std::string& what) {
        const auto answer = answer_to(std::move(frame));
        report.expect(
            answer && answer->type == protocol::FrameType::error && answer->reason == protocol::Reason::access_denied,
            fmt::format("{}: access_denied ({})", what, answer ? describe(*answer) : "no answer"));
    };

    const auto& mine = *options.identity;
    expect_denied(publish_frame(++request, signed_batch(mine, me, fmt::format("agent.{}.status", other), "spoof")),
                  fmt::format("publish to another agent's channel agent.{}.status", other));
    expect_denied(
        publish_frame(++request, signed_batch(mine, me, fmt::format("backend.{}.policies", me), "self-policy")),
        fmt::format("publish to the backend channel backend.{}.policies", me));
    expect_denied(publish_frame(++request, signed_batch(mine, me, "backend.all.policies", "broadcast")),
                  "publish to the broadcast channel backend.all.policies");
    expect_denied(
        publish_frame(++request, signed_batch(mine, other, fmt::format("agent.{}.status", other), "as other")),
        fmt::format("publish as origin id '{}' to its channel", other));
    expect_denied(publish_frame(++request, signed_batch(*options.other_identity, other,
                                                        fmt::format("agent.{}.status", me), "signed by another key")),
                  "publish of a batch signed by another identity's key");

    for (const auto& pattern :
         {fmt::format("backend.{}.>", other), fmt::format("agent.{}.>", other), std::string("agent.>"),
          std::string("backend.>"), std::string("backend.*.policies"), std::string(">")}) {
        expect_denied(subscribe_frame(++request, {pattern}), fmt::format("subscribe to {}", pattern));
    }
    // One refused pattern refuses the whole frame, allowed ones included.
    expect_denied(subscribe_frame(++request, {fmt::format("backend.{}.>", me), fmt::format("backend.{}.>", other)}),
                  "subscribe to its own and another agent's patterns in one frame");

    // What it may do still works on the same session.
    const auto granted = answer_to(subscribe_frame(++request, {fmt::format("backend.{}.>", me), "backend.all.>"}));
    report.expect(
        granted && granted->type == protocol::FrameType::suback,
        fmt::format("subscribe to its own patterns: suback ({})", granted ? describe(*granted) : "no answer"));
    const auto published =
        answer_to(publish_frame(++request, signed_batch(mine, me, fmt::format("agent.{}.status", me), "ok")));
    report.expect(
        published && published->type == protocol::FrameType::puback,
        fmt::format("publish to its own channel: puback ({})", published ? describe(*published) : "no answer"));
    return report.exit_code();
}

}  // namespace aegis::attack
