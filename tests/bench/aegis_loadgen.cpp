// aegis_loadgen: many authenticated agent sessions to one gateway from one process, for
// scripts/bench.sh (the gateway scale case).
//
//   aegis_loadgen keys --count K --seed TEXT [--first F]
//       prints K authorized-file lines (role=agent,id=lgN, N from F) for the identities `run` uses
//   aegis_loadgen run --url ws://HOST:PORT --gateway-key FILE --count K --seed TEXT [options]
//       opens K sessions (identities F to F+K-1, at most --concurrency handshakes at a time),
//       keeps them idle, then has each publish an application heartbeat every --heartbeat-every
//       seconds for --heartbeat-for seconds; prints one JSON object with the figures. Session i
//       beats first at (i + --heartbeat-phase) / K of the interval: several generators given
//       phases j/N interleave their heartbeats evenly instead of sending theirs at the same instants
//   ... run --publish M [--window W --topic TOPIC --tag TAG]
//       instead of heartbeats, each session publishes M messages to agent.ID.TOPIC (payloads
//       TAG-ID-J, J < M), one a publish frame, at most W unacknowledged, for the fan-in case
//
// The identities are derived from the seed (Ed25519 seed = BLAKE2b(seed ":" index)), so both
// commands agree without K secret key files. Keys made this way are for benchmarks only.
// With --gateway-pid, the gateway's CPU time and resident memory come from /proc/PID.
// With --hold, several load generators can be one load measured from outside (scripts/bench.sh:
// the gateway's memory and CPU come from /proc there): each prints {"phase": "opened", ...} once
// its handshakes have ended and waits for a USR1 before the heartbeats (or publishes); after
// its report it waits for another USR1 (or a TERM) before closing its sessions, so that their
// closing is not counted in the phase. --bind ADDR connects from a source address of its own
// (127.0.0.N on loopback), so that no address runs out of ports; --bind A,B,... spreads the
// sessions over several, in blocks, so that one process can hold more sessions than one address
// has ports for quickly (picking a free port slows as an address's ports fill up).

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "crypto/primitives.h"
#include "identity/keyfile.h"
#include "latency.h"
#include "net/websocket.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/record.h"

namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace aegis;
using Clock = std::chrono::steady_clock;

[[nodiscard]] double ms_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

[[nodiscard]] std::string agent_id(std::size_t index) {
    return fmt::format("lg{}", index);
}

[[nodiscard]] crypto::SigningKey derived_key(const std::string& seed, std::size_t index) {
    const auto digest = crypto::blake2b(as_bytes(fmt::format("{}:{}", seed, index)));
    return crypto::SigningKey::from_seed(std::span<const std::uint8_t, crypto::kSeedSize>(digest));
}

// What /proc says about the gateway; zeros without a pid (or when it is gone).
struct ProcessSample {
    double cpu_s = 0;           // user + system
    std::uint64_t rss_kib = 0;  // VmRSS
};

// Time on a CPU of every thread of PID, in nanoseconds (/proc/PID/task/*/schedstat), or nothing
// when the kernel keeps no schedstat: a finer clock than stat's ticks of 10 ms, which are a few
// per cent of a phase as short as opening 2,000 sessions.
[[nodiscard]] std::optional<double> scheduled_cpu_s(long pid) {
    std::error_code ec;
    std::uint64_t nanoseconds = 0;
    bool any = false;
    for (const auto& task : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        std::ifstream schedstat(task.path() / "schedstat");
        std::uint64_t on_cpu = 0;
        if (schedstat >> on_cpu) {
            nanoseconds += on_cpu;
            any = true;
        }
    }
    if (ec || !any) return std::nullopt;
    return static_cast<double>(nanoseconds) / 1e9;
}

[[nodiscard]] ProcessSample sample_process(long pid) {
    ProcessSample out;
    if (pid <= 0) return out;
    if (auto scheduled = scheduled_cpu_s(pid)) {
        out.cpu_s = *scheduled;
    } else {
        std::ifstream stat(fmt::format("/proc/{}/stat", pid));
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        // Fields after the parenthesised command name, which may itself hold spaces.
        const auto close = text.rfind(')');
        if (close != std::string::npos) {
            std::istringstream fields(text.substr(close + 2));
            std::string field;
            unsigned long utime = 0, stime = 0;
            for (int i = 3; fields >> field; ++i) {
                if (i == 14) utime = std::stoul(field);
                if (i == 15) {
                    stime = std::stoul(field);
                    break;
                }
            }
            out.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        }
    }
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) out.rss_kib = std::stoull(line.substr(6));
    return out;
}

// How long this process's main thread has waited for a core while runnable, in ms
// (/proc/self/schedstat, second field); 0 when the kernel keeps no schedstat. A heartbeat answer
// that arrives while this process waits for a core is late by as much, which is not the gateway's time.
[[nodiscard]] double own_wait_for_core_ms() {
    std::ifstream schedstat("/proc/self/schedstat");
    std::uint64_t on_cpu = 0, waiting = 0;
    if (!(schedstat >> on_cpu >> waiting)) return 0.0;
    return static_cast<double>(waiting) / 1e6;
}

[[nodiscard]] double own_cpu_s() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct RunOptions {
    std::string url;
    std::string gateway_key;
    std::size_t count = 2000;
    std::size_t first = 0;
    std::string seed = "aegis-bench";
    std::size_t concurrency = 64;
    double heartbeat_every_s = 5;
    double heartbeat_for_s = 10;
    double heartbeat_phase = 0;  // in [0, 1): where in its slot of the interval each session beats
    double settle_s = 1;
    long gateway_pid = 0;
    std::string bind;  // source address; empty: the system's choice
    bool hold = false;
    std::size_t publish = 0;  // messages per session; 0: heartbeats
    std::size_t window = 20;
    std::string topic = "bench";
    std::string tag = "lg";
    double publish_limit_s = 300;
    std::string latencies_file;  // each heartbeat's answer time (ms), one a line
};

class Load;

// One agent session: connect, the client handshake, then heartbeats sealed in records.
class Agent : public std::enable_shared_from_this<Agent> {
public:
    Agent(Load& load, crypto::SigningKey key, std::string source)
        : load_(load), key_(std::move(key)), source_(std::move(source)) {}

    void open();
    void send_heartbeat();
    void start_publishing();
    void close() {
        if (connection_) connection_->close();
    }
    [[nodiscard]] bool established() const { return records_.has_value() && !closed_; }

private:
    void on_message(Bytes message);
    void on_closed(const Error& why);
    void fail(const Error& why);
    void publish_next();
    [[nodiscard]] std::optional<Error> send_sealed(protocol::Envelope message);

    Load& load_;
    crypto::SigningKey key_;
    std::string source_;  // the address it connects from; empty: the system's choice
    std::shared_ptr<net::Connection> connection_;
    std::optional<protocol::ClientHandshake> handshake_;
    std::optional<protocol::RecordLayer> records_;
    std::string assigned_id_;
    Clock::time_point opened_at_{};
    std::map<std::uint32_t, Clock::time_point> awaiting_;  // heartbeat request id -> sent at
    std::uint32_t next_request_ = 1;
    std::uint64_t sequence_ = 0;
    std::size_t published_ = 0;     // publish mode: messages sent
    std::size_t acknowledged_ = 0;  // and answered, either way
    bool awaiting_finish_ = false;  // ServerHello answered
    bool settled_ = false;          // the handshake ended, either way
    bool closed_ = false;
};

// The run: phases one after another on one io_context.
class Load {
public:
    Load(asio::io_context& io, RunOptions options, net::Url url, crypto::PublicKey gateway_key)
        : io_(io), options_(std::move(options)), url_(std::move(url)), gateway_key_(gateway_key), timer_(io) {}

    void start() {
        before_ = sample_process(options_.gateway_pid);
        if (options_.hold) {
            signals_.emplace(io_, SIGUSR1, SIGTERM);
            std::signal(SIGINT, SIG_DFL);
        }
        agents_.reserve(options_.count);
        std::vector<std::string> sources;
        for (std::size_t start = 0; start < options_.bind.size();) {
            const auto comma = std::min(options_.bind.find(',', start), options_.bind.size());
            sources.push_back(options_.bind.substr(start, comma - start));
            start = comma + 1;
        }
        // Keys first, so deriving them is not counted as handshake time.
        for (std::size_t i = 0; i < options_.count; ++i)
            agents_.push_back(std::make_shared<Agent>(
                *this, derived_key(options_.seed, options_.first + i),
                sources.empty() ? std::string() : sources[i * sources.size() / options_.count]));
        opening_started_ = Clock::now();
        opening_started_unix_ms_ = unix_time_ms();
        opening_cpu_ = sample_process(options_.gateway_pid);
        own_cpu_ = own_cpu_s();
        for (std::size_t i = 0; i < std::min(options_.concurrency, agents_.size()); ++i) open_next();
    }

    // Agent callbacks.
    void handshake_done(std::optional<double> ms, const Error* why) {
        if (ms)
            handshakes_.add(*ms);
        else
            note_failure(*why);
        ++settled_;
        if (next_ < agents_.size())
            open_next();
        else if (settled_ == agents_.size())
            opened();
    }
    void heartbeat_answered(double ms) {
        heartbeats_.add(ms);
        if (draining_ && heartbeats_.count() + heartbeat_errors_ >= heartbeats_sent_) finish();
    }
    void heartbeat_refused(const Error& why) {
        ++heartbeat_errors_;
        note_failure(why);
        if (draining_ && heartbeats_.count() + heartbeat_errors_ >= heartbeats_sent_) finish();
    }
    void heartbeat_sent() { ++heartbeats_sent_; }
    void dropped(const Error& why) {
        ++dropped_;
        note_failure(why);
    }
    void publish_answered(double ms) {
        publishes_.add(ms);
        publishing_done();
    }
    void publish_refused(const Error& why) {
        ++publish_errors_;
        note_failure(why);
        publishing_done();
    }
    void publish_lost(std::size_t messages) {  // a session that dropped while publishing
        publish_errors_ += messages;
        publishing_done();
    }

    [[nodiscard]] asio::io_context& io() { return io_; }
    [[nodiscard]] const net::Url& url() const { return url_; }
    [[nodiscard]] const crypto::PublicKey& gateway_key() const { return gateway_key_; }
    [[nodiscard]] const RunOptions& options() const { return options_; }
    [[nodiscard]] bool finished() const { return finished_; }
    [[nodiscard]] bool publishing() const { return publishing_; }

private:
    void note_failure(const Error& why) {
        ++failures_;
        if (!first_failure_) first_failure_ = why.message;
    }

    void open_next() { agents_[next_++]->open(); }

    // Every handshake ended: measure, let the gateway settle (or, held, wait for the go), then
    // start the heartbeats or the publishes.
    void opened() {
        opening_seconds_ = std::chrono::duration<double>(Clock::now() - opening_started_).count();
        opening_ended_unix_ms_ = unix_time_ms();
        const auto now = sample_process(options_.gateway_pid);
        opening_gateway_cpu_s_ = now.cpu_s - opening_cpu_.cpu_s;
        opening_own_cpu_s_ = own_cpu_s() - own_cpu_;
        if (options_.hold) {
            idle_ = now;
            count_established();
            std::cout << fmt::format(R"({{"phase": "opened", "sessions": {}, "established": {}, "failures": {}, )"
                                     R"("open_started_unix_ms": {}, "open_ended_unix_ms": {}}})",
                                     agents_.size(), established_, failures_, opening_started_unix_ms_,
                                     opening_ended_unix_ms_)
                      << std::endl;
            return await_signal([this] { work(); });
        }
        timer_.expires_after(seconds(options_.settle_s));
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) {
                idle_ = sample_process(options_.gateway_pid);
                count_established();
                work();
            }
        });
    }

    void count_established() {
        established_ = 0;
        for (const auto& agent : agents_)
            if (agent->established()) ++established_;
    }

    // Held: `then` on a USR1; a TERM closes every session and ends the run.
    void await_signal(std::function<void()> then) {
        signals_->async_wait([this, then = std::move(then)](const boost::system::error_code& ec, int signal) {
            if (ec) return;
            if (signal == SIGUSR1) return then();
            close_all();
        });
    }

    void work() {
        if (established_ == 0) return finish();
        if (options_.publish > 0) return start_publishing();
        if (options_.heartbeat_for_s <= 0) return finish();
        beating_started_ = Clock::now();
        probe_lag();
        beating_cpu_ = sample_process(options_.gateway_pid);
        beating_own_cpu_ = own_cpu_s();
        beating_own_wait_ms_ = own_wait_for_core_ms();
        // Agent i beats first at (i + phase)/K of the interval, so the load is even, and the
        // generators of one load (each its own phase) take turns rather than beat together.
        for (std::size_t i = 0; i < agents_.size(); ++i)
            schedule_beat(agents_[i],
                          seconds(options_.heartbeat_every_s * (static_cast<double>(i) + options_.heartbeat_phase) /
                                  static_cast<double>(agents_.size())));
        timer_.expires_after(seconds(options_.heartbeat_for_s));
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) stop_beating();
        });
    }

    void schedule_beat(const std::shared_ptr<Agent>& agent, Clock::duration after) {
        auto timer = std::make_shared<asio::steady_timer>(io_, after);
        beat_timers_.push_back(timer);
        timer->async_wait([this, agent, timer](const boost::system::error_code& ec) {
            if (!ec) beat(agent, timer);
        });
    }

    void beat(const std::shared_ptr<Agent>& agent, const std::shared_ptr<asio::steady_timer>& timer) {
        if (draining_) return;
        if (agent->established()) agent->send_heartbeat();
        timer->expires_at(timer->expiry() + every());
        timer->async_wait([this, agent, timer](const boost::system::error_code& ec) {
            if (!ec) beat(agent, timer);
        });
    }

    [[nodiscard]] Clock::duration every() const { return seconds(options_.heartbeat_every_s); }
    [[nodiscard]] static Clock::duration seconds(double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    }

    // No new heartbeats; the answers still due get a few seconds.
    // How late this process's own event loop runs a timer due every millisecond, while the
    // heartbeats run: an answer that waits for the loop is late by as much, which is this
    // process's time, not the gateway's. Reported beside the heartbeat times so they can be judged.
    void probe_lag() {
        lag_timer_.expires_after(std::chrono::milliseconds(1));
        lag_timer_.async_wait([this, due = lag_timer_.expiry()](const boost::system::error_code& ec) {
            if (ec || draining_) return;
            loop_lag_.add(ms_between(due, Clock::now()));
            probe_lag();
        });
    }

    void stop_beating() {
        draining_ = true;
        lag_timer_.cancel();
        beating_seconds_ = std::chrono::duration<double>(Clock::now() - beating_started_).count();
        beating_gateway_cpu_s_ = sample_process(options_.gateway_pid).cpu_s - beating_cpu_.cpu_s;
        beating_own_cpu_ = own_cpu_s() - beating_own_cpu_;
        beating_own_wait_ms_ = own_wait_for_core_ms() - beating_own_wait_ms_;
        for (const auto& timer : beat_timers_) timer->cancel();
        if (heartbeats_.count() + heartbeat_errors_ >= heartbeats_sent_) return finish();
        timer_.expires_after(std::chrono::seconds(5));
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) finish();
        });
    }

    void start_publishing() {
        publishing_ = true;
        publishing_started_ = Clock::now();
        publishing_cpu_ = sample_process(options_.gateway_pid);
        count_established();  // a session that dropped while held publishes nothing
        publishes_expected_ = established_ * options_.publish;
        for (const auto& agent : agents_)
            if (agent->established()) agent->start_publishing();
        timer_.expires_after(seconds(options_.publish_limit_s));
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) publishing_ended();
        });
    }

    void publishing_done() {
        if (publishing_ && publishes_.count() + publish_errors_ >= publishes_expected_) publishing_ended();
    }

    void publishing_ended() {
        if (!publishing_) return;
        publishing_ = false;
        publishing_seconds_ = std::chrono::duration<double>(Clock::now() - publishing_started_).count();
        publishing_gateway_cpu_s_ = sample_process(options_.gateway_pid).cpu_s - publishing_cpu_.cpu_s;
        finish();
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        timer_.cancel();
        report();
        if (options_.hold) return await_signal([this] { close_all(); });
        close_all();
    }

    void close_all() {
        for (const auto& agent : agents_) agent->close();
        io_.stop();
    }

    void report() {
        const auto k = static_cast<double>(agents_.size());
        const double per_session_kib =
            idle_.rss_kib > before_.rss_kib ? static_cast<double>(idle_.rss_kib - before_.rss_kib) / k : 0.0;
        std::string out = "{";
        out += fmt::format(R"("sessions": {}, "first": {}, "bind": "{}", "established": {}, "failures": {}, )",
                           agents_.size(), options_.first, escape(options_.bind), established_, failures_);
        out += fmt::format(R"("dropped": {}, )", dropped_);
        out += fmt::format(R"("concurrency": {}, "open_seconds": {:.3f}, "handshakes_per_s": {:.0f}, )",
                           options_.concurrency, opening_seconds_,
                           static_cast<double>(handshakes_.count()) / opening_seconds_);
        out += fmt::format(
            R"("gateway_cpu_open_s": {:.3f}, "handshakes_per_gateway_cpu_s": {:.0f}, )", opening_gateway_cpu_s_,
            opening_gateway_cpu_s_ > 0 ? static_cast<double>(handshakes_.count()) / opening_gateway_cpu_s_ : 0.0);
        out += fmt::format(R"("loadgen_cpu_open_s": {:.3f}, )", opening_own_cpu_s_);
        out += handshakes_.json_members("handshake") + ", ";
        out += fmt::format(R"("gateway_rss_before_kib": {}, "gateway_rss_idle_kib": {}, "kib_per_session": {:.2f}, )",
                           before_.rss_kib, idle_.rss_kib, per_session_kib);
        out += fmt::format(R"("heartbeat_every_s": {}, "heartbeat_seconds": {:.3f}, "heartbeats_sent": {}, )",
                           options_.heartbeat_every_s, beating_seconds_, heartbeats_sent_);
        out += fmt::format(R"("heartbeats_answered": {}, "heartbeat_errors": {}, )", heartbeats_.count(),
                           heartbeat_errors_);
        out += heartbeats_.json_members("heartbeat") + ", ";
        out += loop_lag_.json_members("loadgen_lag") + ", ";
        out += fmt::format(R"("loadgen_cpu_heartbeat_s": {:.3f}, "loadgen_wait_for_core_ms": {:.1f}, )",
                           beating_own_cpu_, beating_own_wait_ms_);
        out += fmt::format(R"("gateway_cpu_heartbeat_percent": {:.1f}, )",
                           beating_seconds_ > 0 ? 100.0 * beating_gateway_cpu_s_ / beating_seconds_ : 0.0);
        if (options_.publish > 0) {
            out += fmt::format(R"("publish_per_session": {}, "window": {}, "publishes_expected": {}, )",
                               options_.publish, options_.window, publishes_expected_);
            out += fmt::format(R"("publishes_acknowledged": {}, "publish_errors": {}, "publish_seconds": {:.3f}, )",
                               publishes_.count(), publish_errors_, publishing_seconds_);
            out += fmt::format(
                R"("publishes_per_s": {:.0f}, "gateway_cpu_publish_s": {:.3f}, "publishes_per_gateway_cpu_s": {:.0f}, )",
                publishing_seconds_ > 0 ? static_cast<double>(publishes_.count()) / publishing_seconds_ : 0.0,
                publishing_gateway_cpu_s_,
                publishing_gateway_cpu_s_ > 0 ? static_cast<double>(publishes_.count()) / publishing_gateway_cpu_s_
                                              : 0.0);
            out += publishes_.json_members("publish") + ", ";
        }
        out += fmt::format(R"("first_failure": "{}"}})", first_failure_ ? escape(*first_failure_) : "");
        std::cout << out << std::endl;
        if (!options_.latencies_file.empty()) {
            std::ofstream file(options_.latencies_file);
            for (const double ms : heartbeats_.samples()) file << fmt::format("{:.3f}\n", ms);
        }
    }

    static std::string escape(const std::string& text) {
        std::string out;
        for (const char c : text) {
            if (c == '"' || c == '\\') out += '\\';
            out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
        }
        return out;
    }

    asio::io_context& io_;
    RunOptions options_;
    net::Url url_;
    crypto::PublicKey gateway_key_;
    asio::steady_timer timer_;
    std::optional<asio::signal_set> signals_;  // held: USR1 and TERM
    std::vector<std::shared_ptr<Agent>> agents_;
    std::vector<std::shared_ptr<asio::steady_timer>> beat_timers_;
    std::size_t next_ = 0;
    std::size_t settled_ = 0;
    std::size_t established_ = 0;
    std::size_t failures_ = 0;
    std::size_t dropped_ = 0;
    std::optional<std::string> first_failure_;
    bench::Latencies handshakes_;
    bench::Latencies heartbeats_;
    bench::Latencies loop_lag_;  // while beating: how late a 1 ms timer ran
    asio::steady_timer lag_timer_{io_};
    std::size_t heartbeats_sent_ = 0;
    std::size_t heartbeat_errors_ = 0;
    bench::Latencies publishes_;
    std::size_t publishes_expected_ = 0;
    std::size_t publish_errors_ = 0;
    bool draining_ = false;
    bool publishing_ = false;
    bool finished_ = false;
    ProcessSample before_, opening_cpu_, idle_, beating_cpu_, publishing_cpu_;
    Clock::time_point opening_started_{}, beating_started_{}, publishing_started_{};
    std::uint64_t opening_started_unix_ms_ = 0, opening_ended_unix_ms_ = 0;
    double own_cpu_ = 0;
    double opening_seconds_ = 0, opening_gateway_cpu_s_ = 0, opening_own_cpu_s_ = 0;
    double beating_seconds_ = 0, beating_gateway_cpu_s_ = 0;
    double beating_own_cpu_ = 0, beating_own_wait_ms_ = 0;  // this process while beating
    double publishing_seconds_ = 0, publishing_gateway_cpu_s_ = 0;
};

void Agent::open() {
    opened_at_ = Clock::now();
    net::ClientOptions transport;
    transport.local_address = source_;
    std::weak_ptr<Agent> weak = weak_from_this();
    net::connect(load_.io(), load_.url(), transport, [weak](Result<std::shared_ptr<net::Connection>> made) {
        auto self = weak.lock();
        if (!self) return;
        if (!made) return self->fail(made.error());
        self->connection_ = std::move(made.value());
        self->connection_->start(
            [weak](Bytes message) {
                if (auto agent = weak.lock()) agent->on_message(std::move(message));
            },
            [weak](const Error& why) {
                if (auto agent = weak.lock()) agent->on_closed(why);
            });
        protocol::ClientOptions options;
        options.identity = &self->key_;
        options.pinned_server_keys = {self->load_.gateway_key()};
        options.server_name = self->load_.url().server_name;
        self->handshake_.emplace(std::move(options));
        self->connection_->send(self->handshake_->start(unix_time_ms()));
    });
}

void Agent::on_message(Bytes message) {
    if (records_) {
        auto plaintext = records_->open(message);
        if (!plaintext) return fail(plaintext.error());
        auto frame = protocol::decode_frame(plaintext.value());
        if (!frame) return fail(frame.error());
        const auto waiting = awaiting_.find(frame->request_id);
        if (waiting == awaiting_.end()) return;  // not an answer to a heartbeat (a goodbye is followed by the close)
        const auto sent_at = waiting->second;
        awaiting_.erase(waiting);
        const bool answered = frame->type == protocol::FrameType::puback;
        if (load_.publishing()) {
            ++acknowledged_;
            if (answered)
                load_.publish_answered(ms_between(sent_at, Clock::now()));
            else
                load_.publish_refused(make_error(ExitCode::refused, "publish refused: {}", frame->text));
            return publish_next();
        }
        if (answered) return load_.heartbeat_answered(ms_between(sent_at, Clock::now()));
        load_.heartbeat_refused(make_error(ExitCode::refused, "heartbeat refused: {}", frame->text));
        return;
    }
    if (!handshake_) return;
    if (!awaiting_finish_) {
        auto reply = handshake_->on_server_hello(message);
        if (!reply) return fail(reply.error());
        awaiting_finish_ = true;
        connection_->send(std::move(reply.value()));
        return;
    }
    auto grant = handshake_->on_server_finish(message);
    if (!grant) return fail(grant.error());
    records_.emplace(handshake_->take_keys(), protocol::RekeyPolicy{}, unix_time_ms());
    assigned_id_ = grant->assigned_id;
    handshake_.reset();
    settled_ = true;
    load_.handshake_done(ms_between(opened_at_, Clock::now()), nullptr);
}

// As the broker's heartbeat: low priority, kind heartbeat, a small JSON status, expiring.
void Agent::send_heartbeat() {
    protocol::Envelope message;
    message.id = protocol::new_message_id(aegis::unix_time_ms());
    message.channel = fmt::format("agent.{}.heartbeat", assigned_id_);
    message.origin = key_.public_key();
    message.origin_id = assigned_id_;
    message.sequence = ++sequence_;
    message.timestamp_ms = unix_time_ms();
    message.expires_ms = message.timestamp_ms + 60'000;
    message.priority = protocol::Priority::low;
    message.kind = protocol::Kind::heartbeat;
    message.headers = {{"content-type", "application/json"}};
    const std::string status = fmt::format(R"({{"uptime_s":{},"queue_depth":0}})", sequence_);
    message.payload.assign(status.begin(), status.end());
    if (auto refused = send_sealed(std::move(message))) return load_.heartbeat_refused(*refused);
    load_.heartbeat_sent();
}

void Agent::start_publishing() {
    for (std::size_t i = 0; i < load_.options().window; ++i) publish_next();
}

// As an agent's broker publishes an event: normal priority, one message a frame.
void Agent::publish_next() {
    if (closed_ || published_ >= load_.options().publish) return;
    protocol::Envelope message;
    message.id = protocol::new_message_id(aegis::unix_time_ms());
    message.channel = fmt::format("agent.{}.{}", assigned_id_, load_.options().topic);
    message.origin = key_.public_key();
    message.origin_id = assigned_id_;
    message.sequence = ++sequence_;
    message.timestamp_ms = unix_time_ms();
    const std::string payload = fmt::format("{}-{}-{}", load_.options().tag, assigned_id_, published_++);
    message.payload.assign(payload.begin(), payload.end());
    if (auto refused = send_sealed(std::move(message))) {
        ++acknowledged_;
        load_.publish_refused(*refused);
    }
}

// Signs a batch of one, frames it as a publish and seals it; the error when it cannot be signed.
std::optional<Error> Agent::send_sealed(protocol::Envelope message) {
    std::vector<protocol::Envelope> messages;
    messages.push_back(std::move(message));
    auto batch = protocol::sign_batch(std::move(messages), key_);
    if (!batch) return batch.error();
    protocol::Frame frame;
    frame.type = protocol::FrameType::publish;
    frame.request_id = next_request_++;
    frame.batch = protocol::encode_batch(batch.value());
    connection_->send(records_->seal(protocol::encode_frame(frame), unix_time_ms()));
    // The clock starts once the record is written, not when it is queued: the connection writes
    // it in a handler of its own, and this one runs after it (one thread, handlers in order), so
    // a backlog of this process's own before the write is not counted as the gateway's time.
    asio::post(load_.io(), [weak = weak_from_this(), id = frame.request_id] {
        if (auto self = weak.lock()) self->awaiting_.emplace(id, Clock::now());
    });
    return std::nullopt;
}

void Agent::on_closed(const Error& why) {
    if (closed_ || load_.finished()) return;
    closed_ = true;
    if (!settled_) {
        settled_ = true;
        return load_.handshake_done(std::nullopt, &why);
    }
    load_.dropped(why);
    if (load_.publishing() && published_ > 0) load_.publish_lost(load_.options().publish - acknowledged_);
}

void Agent::fail(const Error& why) {
    if (connection_) connection_->close();
    on_closed(why);
}

int keys(std::size_t first, std::size_t count, const std::string& seed) {
    std::string out;
    for (std::size_t i = first; i < first + count; ++i) {
        const auto key = derived_key(seed, i);
        out += fmt::format("role=agent,id={} {}\n", agent_id(i),
                           identity::format_public_key_line(key.public_key(), agent_id(i)));
    }
    std::cout << out << std::flush;
    return 0;
}

int run(const RunOptions& options) {
    auto url = net::parse_url(options.url);
    if (!url) {
        std::cerr << "aegis_loadgen: error: " << url.error().message << '\n';
        return 2;
    }
    auto gateway_key = identity::resolve_public_key(options.gateway_key);
    if (!gateway_key) {
        std::cerr << "aegis_loadgen: error: " << gateway_key.error().message << '\n';
        return 6;
    }
    asio::io_context io;
    Load load(io, options, std::move(url.value()), gateway_key->key);
    asio::post(io, [&load] { load.start(); });
    io.run();
    return load.finished() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    RunOptions options;
    std::string command;
    po::options_description described("Options");
    // clang-format off
    described.add_options()
        ("url", po::value(&options.url), "gateway URL (ws://HOST:PORT)")
        ("gateway-key", po::value(&options.gateway_key), "the gateway's public key (file or line)")
        ("count", po::value(&options.count)->default_value(options.count), "sessions")
        ("first", po::value(&options.first)->default_value(options.first), "index of the first identity")
        ("seed", po::value(&options.seed)->default_value(options.seed), "identity seed (keys and run must agree)")
        ("concurrency", po::value(&options.concurrency)->default_value(options.concurrency), "handshakes in flight at most")
        ("heartbeat-every", po::value(&options.heartbeat_every_s)->default_value(options.heartbeat_every_s),
         "seconds between one session's heartbeats")
        ("heartbeat-for", po::value(&options.heartbeat_for_s)->default_value(options.heartbeat_for_s),
         "seconds of heartbeats (0: none)")
        ("heartbeat-phase", po::value(&options.heartbeat_phase)->default_value(options.heartbeat_phase),
         "0 to 1: session i beats first at (i + PHASE)/K of the interval (generator j of N: j/N)")
        ("settle", po::value(&options.settle_s)->default_value(options.settle_s),
         "seconds between the last handshake and the idle memory reading")
        ("gateway-pid", po::value(&options.gateway_pid), "read the gateway's CPU and memory from /proc/PID")
        ("bind", po::value(&options.bind), "connect from this source address (127.0.0.N), or these (A,B,...: in blocks)")
        ("hold", po::bool_switch(&options.hold), "wait for a USR1 after opening and another before closing")
        ("publish", po::value(&options.publish)->default_value(options.publish),
         "messages each session publishes instead of heartbeats (0: heartbeats)")
        ("window", po::value(&options.window)->default_value(options.window), "publish: unacknowledged at most per session")
        ("topic", po::value(&options.topic)->default_value(options.topic), "publish: the channel agent.ID.TOPIC")
        ("tag", po::value(&options.tag)->default_value(options.tag), "publish: payload prefix (TAG-ID-J)")
        ("publish-limit", po::value(&options.publish_limit_s)->default_value(options.publish_limit_s),
         "publish: seconds before giving up on the answers")
        ("latencies", po::value(&options.latencies_file), "write each heartbeat's answer time (ms) to FILE")
        ("help,h", "show this help");
    // clang-format on
    po::options_description hidden;
    hidden.add_options()("command", po::value(&command));
    po::options_description all;
    all.add(described).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1);
    try {
        po::variables_map given;
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), given);
        po::notify(given);
        if (given.count("help") || command.empty()) {
            std::cout << "Usage: aegis_loadgen keys --count K [--seed TEXT]\n"
                         "       aegis_loadgen run --url URL --gateway-key KEY --count K [options]\n\n"
                      << described;
            return command.empty() && !given.count("help") ? 2 : 0;
        }
    } catch (const po::error& e) {
        std::cerr << "aegis_loadgen: error: " << e.what() << '\n';
        return 2;
    }
    if (!(options.heartbeat_phase >= 0 && options.heartbeat_phase < 1)) {
        std::cerr << "aegis_loadgen: error: --heartbeat-phase must be at least 0 and below 1\n";
        return 2;
    }
    if (options.count == 0 || options.concurrency == 0 || options.heartbeat_every_s <= 0 || options.window == 0) {
        std::cerr << "aegis_loadgen: error: --count, --concurrency, --heartbeat-every and --window must be positive\n";
        return 2;
    }
    if (command == "keys") return keys(options.first, options.count, options.seed);
    if (command == "run") {
        if (options.url.empty() || options.gateway_key.empty()) {
            std::cerr << "aegis_loadgen: error: run needs --url and --gateway-key\n";
            return 2;
        }
        return run(options);
    }
    std::cerr << "aegis_loadgen: error: unknown command '" << command << "' (keys or run)\n";
    return 2;
}
