// Attacks 4 and 5: connections that never finish their handshake, and a flood of
// unauthenticated connections. Both must stay within the gateway's limits and time out on
// schedule, while legitimate brokers (driven by the calling script) keep working.

#include <fstream>

#include "attacks.h"
#include "core/clock.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

namespace {

using Clock = std::chrono::steady_clock;

struct Kind {
    std::string name;
    std::vector<std::size_t> members;  // indexes into the peer list
};

}  // namespace

void touch(const std::filesystem::path& path) {
    if (path.empty()) return;
    std::ofstream(path).flush();
}

int hanging_handshakes(const Options& options) {
    Report report;
    Wire wire;
    const Ms step{5000};
    const auto started = Clock::now();
    std::vector<std::unique_ptr<Peer>> peers;
    std::vector<Ms> opened;  // since `started`
    Kind bare{"TCP only, no WebSocket upgrade", {}};
    Kind silent{"WebSocket, no ClientHello", {}};
    Kind hello{"WebSocket, ClientHello but no ClientAuth", {}};
    const auto since_start = [&] { return std::chrono::duration_cast<Ms>(Clock::now() - started); };
    // One line for the one that failed, not one per connection that worked.
    const auto setup_failed = [&](std::string_view what, const Error& why) {
        report.expect(false, fmt::format("{} after {} connections: {}", what, peers.size(), why.message));
        return 2;
    };

    for (std::size_t i = 0; i < options.tcp_connections; ++i) {
        auto peer = wire.tcp(options.port, step);
        if (!peer) return setup_failed("a TCP connection", peer.error());
        bare.members.push_back(peers.size());
        peers.push_back(std::move(peer.value()));
        opened.push_back(since_start());
    }
    const auto anyone = crypto::SigningKey::generate();  // a ClientHello names nobody
    for (std::size_t i = 0; i < options.connections; ++i) {
        auto peer = wire.websocket(options.port, step);
        if (!peer) return setup_failed("a WebSocket upgrade", peer.error());
        const auto at = since_start();
        if (i < options.hello_connections) {
            auto handshake = client_handshake(Target{options.port, &anyone, options.gateway_key});
            if (auto sent = (*peer)->send(handshake.start(unix_time_ms()), step); !sent)
                return setup_failed("a ClientHello", sent.error());
            hello.members.push_back(peers.size());
        } else {
            silent.members.push_back(peers.size());
        }
        peers.push_back(std::move(peer.value()));
        opened.push_back(at);
    }
    report.measured(fmt::format("{} connections hanging after {} ms", peers.size(), since_start().count()));
    touch(options.ready_file);

    std::vector<Peer*> watched;
    for (const auto& peer : peers) watched.push_back(peer.get());
    const auto waited_from = since_start();
    const auto ended = wire.wait_closed(watched, options.handshake_timeout + Ms(15'000));
    // A connection hangs at most the timeout, and no less: the gateway waited for it, then gave up.
    const auto slack = Ms(5000);
    for (const auto* kind : {&bare, &silent, &hello}) {
        if (kind->members.empty()) continue;
        std::size_t closed = 0;
        Ms shortest = Ms::max();
        Ms longest{0};
        for (const auto i : kind->members) {
            if (!ended[i]) continue;
            ++closed;
            const auto lived = waited_from + *ended[i] - opened[i];
            shortest = std::min(shortest, lived);
            longest = std::max(longest, lived);
        }
        report.expect(closed == kind->members.size(),
                      fmt::format("{}: {} of {} closed by the gateway", kind->name, closed, kind->members.size()));
        if (closed == 0) continue;
        report.measured(fmt::format("{}: closed after {} to {} ms (--handshake-timeout {} ms)", kind->name,
                                    shortest.count(), longest.count(), options.handshake_timeout.count()));
        report.expect(shortest + Ms(250) >= options.handshake_timeout,
                      fmt::format("{}: none closed before the handshake timeout", kind->name));
        report.expect(longest <= options.handshake_timeout + slack,
                      fmt::format("{}: all closed within the handshake timeout + {} ms", kind->name, slack.count()));
    }
    return report.exit_code();
}

int connection_flood(const Options& options) {
    Report report;
    Wire wire;
    const Ms step{5000};
    const auto started = Clock::now();
    std::vector<std::unique_ptr<Peer>> held;
    std::size_t refused = 0;
    std::size_t timed_out = 0;
    for (std::size_t i = 0; i < options.connections; ++i) {
        auto peer = wire.websocket(options.port, step);
        if (peer) {
            held.push_back(std::move(peer.value()));
        } else if (peer.error().exit == ExitCode::timeout) {
            ++timed_out;
        } else {
            ++refused;
        }
    }
    const auto took = std::chrono::duration_cast<Ms>(Clock::now() - started);
    report.measured(
        fmt::format("{} connection attempts in {} ms: {} upgraded and held, {} closed by the gateway, {} timed out",
                    options.connections, took.count(), held.size(), refused, timed_out));
    touch(options.ready_file);
    if (took < options.handshake_timeout) {
        // None of the held ones can have timed out yet, so they were all open at once.
        report.expect(held.size() <= options.max_connections,
                      fmt::format("at most {} connections were open at once", options.max_connections));
        report.expect(refused + options.max_connections >= options.connections,
                      "every attempt over the limit was closed at once");
    } else {
        report.measured("the flood took longer than the handshake timeout: the concurrency bound was not checked");
    }
    report.expect(timed_out == 0, "no attempt waited for the gateway");

    std::vector<Peer*> watched;
    for (const auto& peer : held) watched.push_back(peer.get());
    const auto ended = wire.wait_closed(watched, options.handshake_timeout + Ms(15'000));
    std::size_t closed = 0;
    for (const auto& time : ended) closed += time ? 1 : 0;
    report.expect(
        closed == held.size(),
        fmt::format("the gateway closed {} of the {} held connections (handshake timeout)", closed, held.size()));
    return report.exit_code();
}

}  // namespace aegis::attack
