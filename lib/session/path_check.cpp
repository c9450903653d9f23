#include "session/path_check.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>

#include "protocol/reason.h"

namespace aegis::session {

namespace {

using protocol::Reason;

// Steps of the transport: a failure there means the gateway was not reached (exit 1).
[[nodiscard]] bool transport_step(std::string_view step) {
    return step == "resolve" || step == "tcp" || step == "proxy" || step == "tls" || step == "upgrade";
}

// The step a timeout or a failure without a report of its own interrupted: the one after the last
// reported, in the order of path_check.h.
[[nodiscard]] std::string next_step(const ClientSessionOptions& options, const std::vector<PathStep>& done) {
    std::vector<std::string> order{"resolve", "tcp"};
    if (!options.transport.proxy.empty()) order.emplace_back("proxy");
    if (options.url.tls) order.emplace_back("tls");
    for (const char* name : {"upgrade", "handshake", "key"}) order.emplace_back(name);
    if (!options.gateway_cas.empty()) order.emplace_back("certificate");
    order.emplace_back("auth");
    if (done.empty()) return order.front();
    const auto last = std::find(order.begin(), order.end(), done.back().name);
    return last == order.end() || last + 1 == order.end() ? done.back().name : *(last + 1);
}

// What the HTTP Date of the upgrade answer tells of the two clocks, and whether that is within
// the tolerance `skew_ms`.
[[nodiscard]] PathStep clock_step(std::optional<std::chrono::milliseconds> offset, std::uint64_t skew_ms) {
    PathStep step{"clock", true, {}, {}};
    if (!offset) {
        step.detail = fmt::format(
            "the gateway accepted this host's handshake time, so the clocks differ by less than its "
            "tolerance (aegis-gateway --clock-skew, default {} s); it sent no Date to tell more",
            protocol::kDefaultClockSkewMs / 1000);
        return step;
    }
    const double seconds = static_cast<double>(offset->count()) / 1000.0;
    // The Date header has whole seconds: a difference under one second is no difference.
    const auto whole = static_cast<long long>(std::trunc(seconds));
    step.ok = static_cast<std::uint64_t>(std::llabs(whole)) * 1000 <= skew_ms;
    step.detail = whole == 0 ? std::string("the gateway's clock (its HTTP Date) agrees with this host's to the second")
                             : fmt::format("the gateway's clock (its HTTP Date) is {} s {} this host's{}",
                                           std::llabs(whole), whole > 0 ? "ahead of" : "behind",
                                           step.ok ? "" : fmt::format(", over the tolerance of {} s", skew_ms / 1000));
    return step;
}

// The exit code of a failure at `step`: the transport's are failures (1: the gateway was not
// reached) unless they timed out or the input was bad; the handshake's keep the code of the
// gateway's reason. Exit 3 means "no broker" to the tools, so a lost connection is 1 as well.
[[nodiscard]] ExitCode exit_for(std::string_view step, const Error& error) {
    if (error.exit == ExitCode::timeout || error.exit == ExitCode::bad_input) return error.exit;
    if (transport_step(step) || error.exit == ExitCode::unreachable) return ExitCode::failure;
    if (step == "key" || step == "certificate" || step == "clock") return ExitCode::refused;
    return error.exit;
}

}  // namespace

std::string fix_for(std::string_view step, const Error& error) {
    const auto reason = static_cast<Reason>(error.reason);
    if (error.exit == ExitCode::timeout)
        return "no answer in time: check firewalls on the way, or allow more with --timeout";
    if (step == "resolve") return "check the host name in the URL and this host's DNS (/etc/resolv.conf)";
    if (step == "tcp")
        return "check that aegis-gateway runs and listens on that address and port (its --listen), and firewalls";
    if (step == "proxy")
        return "check the proxy (--proxy, https_proxy, http_proxy): it must allow CONNECT to the gateway";
    if (step == "tls")
        return "trust the CA that signed the gateway's TLS certificate (--ca-file or the system store), or renew "
               "that certificate; ws:// and wss:// must match the gateway's port";
    if (step == "upgrade") return "check the URL's scheme (ws:// or wss://) and path against the gateway's";
    if (step == "clock") return "set this host's clock right (NTP: systemd-timesyncd, chrony)";
    if (step == "key") {
        return "if the gateway's key changed on purpose, check its fingerprint with the gateway's operator "
               "and pin it (--backend-key, repeatable during a rollover), or pin the CA (--backend-ca)";
    }
    if (step == "certificate")
        return "renew the gateway's certificate (aegis-keygen -s CA_KEY -r gateway) or set this host's clock right";
    if (reason == Reason::unknown_identity)
        return "authorize this key on the gateway (a line in its authorized file, or a certificate from a CA it "
               "trusts)";
    if (reason == Reason::revoked) return "this key or its certificate is revoked: enrol a new key";
    if (reason == Reason::certificate_expired)
        return "renew this identity's certificate (aegis-keygen -s) or set this host's clock right";
    if (step == "auth" && reason == Reason::unsupported_version)
        return "update the gateway: it predates probes, and logging in to test would replace this identity's live "
               "session; the steps above passed";
    if (reason == Reason::busy || reason == Reason::shutting_down)
        return "the gateway is busy or restarting: try again";
    if (step == "handshake") return "check that the URL names an Aegis gateway of a compatible version";
    return "";
}

PathReport check_path(ClientSessionOptions options, std::chrono::milliseconds timeout, bool accept_unpinned) {
    boost::asio::io_context io;
    PathReport report;
    std::optional<std::chrono::milliseconds> clock_offset;
    bool finished = false;
    options.transport.limits.handshake_timeout = timeout;
    options.handshake_timeout = timeout;
    options.heartbeat_interval = std::chrono::milliseconds(0);
    // Judged, not logged in: a live broker of the same identity keeps its session.
    options.probe = true;
    options.transport.on_step = [&](const net::ConnectStep& step) {
        if (finished) return;  // what happens while the session stops is no part of the report
        if (step.server_time) {
            clock_offset = std::chrono::duration_cast<std::chrono::milliseconds>(*step.server_time -
                                                                                 std::chrono::system_clock::now());
        }
        report.steps.push_back(PathStep{step.name, step.ok, step.elapsed, step.detail});
    };
    const auto fixed = options;  // what next_step() reads

    std::unique_ptr<ClientSession> session;
    boost::asio::steady_timer deadline(io);
    SessionEvents events;
    if (accept_unpinned) events.on_server_key = [](const crypto::PublicKey& /*key*/) { return true; };
    events.on_state = [&](State state, const Error* cause) {
        if (state == State::connecting || finished) return;
        finished = true;
        deadline.cancel();
        if (state != State::connected)
            report.failure = cause ? *cause : make_error(ExitCode::failure, "the session stopped");
        session->stop();
    };
    session = std::make_unique<ClientSession>(io, options, std::move(events));
    deadline.expires_after(timeout);
    deadline.async_wait([&](const boost::system::error_code& ec) {
        if (ec || finished) return;
        finished = true;
        report.failure = make_error(ExitCode::timeout, "timed out after {} ms", timeout.count());
        session->stop();
    });
    session->start();
    io.run();

    // The gateway's view of this host's clock came with ServerHello; the Date header adds a figure.
    const auto handshake = std::find_if(report.steps.begin(), report.steps.end(),
                                        [](const PathStep& step) { return step.name == "handshake" && step.ok; });
    if (handshake != report.steps.end()) {
        report.steps.insert(handshake + 1, clock_step(clock_offset, options.max_clock_skew_ms));
    } else if (!report.steps.empty() && report.steps.back().name == "clock" && clock_offset) {
        report.steps.back().detail += "; " + clock_step(clock_offset, options.max_clock_skew_ms).detail;
    }
    const auto bad_clock = std::find_if(report.steps.begin(), report.steps.end(),
                                        [](const PathStep& step) { return step.name == "clock" && !step.ok; });
    if (!report.failure && bad_clock != report.steps.end()) {
        report.failure = make_error(ExitCode::refused, "{}", bad_clock->detail);
        report.steps.erase(bad_clock + 1, report.steps.end());
    }
    if (!report.failure) return report;

    if (report.failure->reason != 0) {
        // The reason's name too, as metrics, logs and JSON spell it.
        report.failure->message +=
            fmt::format(" (reason {})", protocol::name(static_cast<Reason>(report.failure->reason)));
    }
    const auto failed =
        std::find_if(report.steps.begin(), report.steps.end(), [](const PathStep& step) { return !step.ok; });
    if (failed != report.steps.end()) {
        report.failed_step = failed->name;
        failed->detail = report.failure->message;
        report.steps.erase(failed + 1, report.steps.end());
    } else {
        report.failed_step = next_step(fixed, report.steps);
        report.steps.push_back(PathStep{report.failed_step, false, {}, report.failure->message});
    }
    report.failure->exit = exit_for(report.failed_step, *report.failure);
    report.fix = fix_for(report.failed_step, *report.failure);
    return report;
}

}  // namespace aegis::session
