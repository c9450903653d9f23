// Attack 3: oversized WebSocket messages and batches. Before the handshake no message may be
// longer than a handshake message (2048 bytes), so unauthenticated peers cannot make the gateway
// buffer --max-message-bytes each; inside a session a batch over --max-message-bytes is refused
// too_large and a record over the transport limit closes the session. The gateway's resident
// memory is sampled throughout and its growth checked against a stated bound.

#include <fstream>

#include "attacks.h"
#include "protocol/reason.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

namespace {

constexpr std::size_t kFragmentBytes = 64 * 1024;
constexpr std::size_t kFrameOverhead = 4096;  // the gateway's room around a batch (lib/gateway/gateway.cpp)

struct Memory {
    int pid = 0;
    std::uint64_t baseline_kib = 0;
    std::uint64_t peak_kib = 0;

    explicit Memory(int gateway_pid) : pid(gateway_pid), baseline_kib(resident_kib(pid)), peak_kib(baseline_kib) {}
    void sample() { peak_kib = std::max(peak_kib, resident_kib(pid)); }
    [[nodiscard]] double growth_mib() const { return static_cast<double>(peak_kib - baseline_kib) / 1024.0; }

    void check(Report& report, std::size_t bound_mib, std::size_t offered_mib) {
        sample();
        report.measured(fmt::format("gateway VmRSS {} KiB before, {} KiB at peak: +{:.1f} MiB for {} MiB offered",
                                    baseline_kib, peak_kib, growth_mib(), offered_mib));
        report.expect(baseline_kib > 0, "the gateway's VmRSS can be read");
        report.expect(growth_mib() <= static_cast<double>(bound_mib),
                      fmt::format("the gateway's VmRSS grew by at most {} MiB", bound_mib));
    }
};

}  // namespace

std::uint64_t resident_kib(int pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string key;
    while (status >> key) {
        if (key == "VmRSS:") {
            std::uint64_t kib = 0;
            status >> kib;
            return kib;
        }
        status.ignore(1 << 16, '\n');
    }
    return 0;
}

int oversize_handshake(const Options& options) {
    Report report;
    Wire wire;
    Memory memory(options.gateway_pid);
    const Ms step{5000};
    const Bytes fragment(kFragmentBytes, 0x01);

    std::vector<std::unique_ptr<Peer>> peers;
    std::size_t offered = 0;
    for (std::size_t i = 0; i < options.connections; ++i) {
        auto peer = wire.websocket(options.port, step);
        if (!peer) continue;
        // A message that never ends: the gateway would have to hold every byte until it did.
        for (std::size_t sent = 0; sent < options.bytes; sent += fragment.size()) {
            if (!(*peer)->send_fragment(fragment, false, step)) break;
            offered += fragment.size();
        }
        peers.push_back(std::move(peer.value()));
        memory.sample();
    }
    report.expect(peers.size() == options.connections,
                  fmt::format("{} of {} connections were upgraded", peers.size(), options.connections));
    report.measured(fmt::format("{} MiB sent as unfinished handshake messages", offered / (1024 * 1024)));

    std::vector<Peer*> watched;
    for (const auto& peer : peers) watched.push_back(peer.get());
    const auto ended = wire.wait_closed(watched, step);
    std::size_t closed = 0;
    for (const auto& time : ended) closed += time ? 1 : 0;
    report.expect(closed == peers.size(),
                  fmt::format("the gateway closed {} of {} connections within {} ms (not at the handshake timeout)",
                              closed, peers.size(), step.count()));
    memory.check(report, options.max_rss_growth_mib, options.connections * options.bytes / (1024 * 1024));
    return report.exit_code();
}

int oversize_session(const Options& options) {
    Report report;
    Wire wire;
    Memory memory(options.gateway_pid);
    const Target target{options.port, &*options.identity, options.gateway_key};
    const Ms step{10'000};
    std::size_t offered = 0;

    for (std::size_t round = 0; round < std::max<std::size_t>(options.connections, 1); ++round) {
        auto session = establish(wire, target, step);
        if (!report.expect(session.ok(), fmt::format("round {}: a session is established", round))) return 2;

        // A batch over --max-message-bytes, in a record the transport still takes.
        auto batch = signed_batch(*options.identity, options.agent_id, fmt::format("agent.{}.logs", options.agent_id),
                                  std::string(options.max_message_bytes, 'x'));
        offered += batch.size();
        report.expect(
            batch.size() > options.max_message_bytes && batch.size() + 64 < options.max_message_bytes + kFrameOverhead,
            fmt::format("round {}: a batch of {} bytes is over the limit, its record within the transport's", round,
                        batch.size()));
        report.expect(session->send(publish_frame(7, std::move(batch)), step).ok(),
                      fmt::format("round {}: it is published", round));
        auto answer = session->next_frame(step);
        report.expect(answer && answer->type == protocol::FrameType::error &&
                          answer->reason == protocol::Reason::too_large && answer->request_id == 7,
                      fmt::format("round {}: the publish is refused too_large ({})", round,
                                  answer ? describe(answer.value()) : answer.error().message));
        memory.sample();
        report.expect(
            session->send(subscribe_frame(8, {fmt::format("backend.{}.policies", options.agent_id)}), step).ok() &&
                [&] {
                    auto next = session->next_frame(step);
                    return next && next->type == protocol::FrameType::suback;
                }(),
            fmt::format("round {}: the session goes on (a subscribe gets its suback)", round));

        // One WebSocket message over the transport's limit: refused from its header on.
        const Bytes huge(options.max_message_bytes + kFrameOverhead + 1, 0x02);
        offered += huge.size();
        // The gateway refuses it from the frame header on and stops reading, so the write may never finish.
        (void)session->peer->send(huge, Ms(2000));
        const auto ended = wire.wait_closed({session->peer.get()}, step);
        report.expect(
            ended.front().has_value(),
            fmt::format("round {}: a message of {} bytes makes the gateway close the connection", round, huge.size()));
        memory.sample();
    }
    memory.check(report, options.max_rss_growth_mib, offered / (1024 * 1024));
    return report.exit_code();
}

}  // namespace aegis::attack
