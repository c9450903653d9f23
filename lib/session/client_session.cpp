#include "session/client_session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <random>

#include "core/clock.h"
#include "identity/certificate.h"
#include "protocol/frame.h"
#include "protocol/reason.h"

namespace aegis::session {

namespace {

// Backoff never goes below this, so a misconfigured minimum cannot spin.
constexpr std::chrono::milliseconds kBackoffFloor{100};
// A connection that lasted this long resets the backoff to its minimum.
constexpr std::chrono::seconds kStableConnection{10};
// After a goodbye `shutting_down` the gateway is probably restarting: for this long, attempts
// follow each other after a short jittered delay (kRestartDelay) instead of the backoff.
constexpr std::chrono::seconds kRestartWindow{5};
constexpr std::chrono::milliseconds kRestartDelayMin{100};
constexpr std::chrono::milliseconds kRestartDelayMax{1'000};
// Request id for the unsubscribe half of a set_subscriptions replacement (its suback is not reported).
constexpr std::uint32_t kInternalRequest = 0;

// Refusals a retry cannot fix: the session stops instead of backing off.
bool stops_retrying(protocol::Reason reason) {
    using protocol::Reason;
    return reason == Reason::server_key_mismatch || reason == Reason::unsupported_version;
}

// A gateway trusted by CA (--backend-ca) proves itself with a gateway certificate of the key
// that signed the handshake, from one of `cas` (its validity window is checked after).
Result<identity::Certificate> certified_gateway(const Bytes& bytes, const crypto::PublicKey& key,
                                                const std::vector<crypto::PublicKey>& cas) {
    using protocol::Reason;
    const auto refuse = [&](std::string detail) {
        return protocol::protocol_error(Reason::server_key_mismatch,
                                        fmt::format("gateway key {}: {}", crypto::fingerprint(key), detail));
    };
    if (bytes.empty())
        return refuse("the gateway sent no certificate; a gateway trusted by CA needs KEY-cert.pub beside its key");
    auto decoded = identity::decode_certificate(bytes);
    if (!decoded) return refuse(decoded.error().message);
    const auto& cert = decoded.value();
    if (cert.key != key) return refuse(fmt::format("its certificate serial {} is for another key", cert.serial));
    if (cert.role != identity::CertificateRole::gateway)
        return refuse(fmt::format("its certificate serial {} certifies an {}, not a gateway", cert.serial,
                                  identity::to_string(cert.role)));
    if (std::find(cas.begin(), cas.end(), cert.ca_key) == cas.end())
        return refuse(fmt::format("its certificate serial {} is signed by CA {}, not one this broker trusts",
                                  cert.serial, crypto::fingerprint(cert.ca_key)));
    return cert;
}

// The gateway's certificate is valid now, within the clock-skew tolerance.
Result<void> check_gateway_validity(const identity::Certificate& cert, std::uint64_t now_s, std::uint64_t skew_s) {
    if (auto problem = identity::validity_problem(cert, now_s, skew_s, "this host's time"))
        return protocol::protocol_error(protocol::Reason::certificate_expired, "gateway " + *problem);
    return {};
}

// The gateway refused this identity: an operator may authorize it again (or renew its
// certificate), so it is retried, slowly.
bool identity_refused(protocol::Reason reason) {
    using protocol::Reason;
    return reason == Reason::unknown_identity || reason == Reason::revoked || reason == Reason::certificate_expired;
}

}  // namespace

std::string_view to_string(State state) {
    switch (state) {
        case State::connecting: return "connecting";
        case State::connected: return "connected";
        case State::backing_off: return "backing_off";
        case State::refused: return "refused";
        case State::stopped: return "stopped";
    }
    return "unknown";
}

struct ClientSession::Impl : std::enable_shared_from_this<ClientSession::Impl> {
    enum class RequestKind : std::uint8_t { publish, subscribe };

    Impl(boost::asio::io_context& io_context, ClientSessionOptions session_options, SessionEvents session_events)
        : io(io_context),
          options(std::move(session_options)),
          events(std::move(session_events)),
          timer(io_context),
          heartbeat(io_context),
          random(std::random_device{}()),
          token(options.resume_token) {
        for (std::size_t i = 0; i <= options.other_urls.size(); ++i) url_order.push_back(i);
    }

    boost::asio::io_context& io;
    ClientSessionOptions options;
    SessionEvents events;
    boost::asio::steady_timer timer;      // handshake timeout, then backoff
    boost::asio::steady_timer heartbeat;  // application heartbeat while connected
    std::mt19937_64 random;

    std::uint64_t attempt_generation = 0;  // bumps on every attempt; stale callbacks check it
    std::uint32_t failures = 0;            // consecutive attempts without a stable connection
    // Indexes into {url, other_urls...} in the order of this round; url_turn is the one tried.
    std::vector<std::size_t> url_order;
    std::size_t url_turn = 0;
    bool running = false;
    bool ever_connected = false;
    std::shared_ptr<net::Connection> connection;
    std::optional<protocol::ClientHandshake> handshake;
    bool awaiting_finish = false;
    std::optional<protocol::RecordLayer> records;
    std::optional<protocol::Accepted> granted;
    // The handshake step under way, for ClientSessionOptions::transport.on_step ("" when none).
    std::string open_step;
    std::chrono::steady_clock::time_point step_started{};
    std::chrono::steady_clock::time_point connected_at{};
    bool waiting_to_retry = false;  // the backoff timer runs (reconnect_now may cut it short)
    // Until then, a failed attempt is retried after kRestartDelay (a goodbye shutting_down came).
    std::optional<std::chrono::steady_clock::time_point> restart_until;

    std::vector<std::string> subscriptions;
    std::uint32_t subscriptions_request = 0;
    bool subscriptions_sent = false;  // on the current connection
    std::map<std::uint32_t, RequestKind> pending;
    std::uint64_t past_rekeys = 0;   // from connections that have ended
    protocol::SessionToken token{};  // presented on the next handshake
    SessionStats counters;

    void set_state(State state, const Error* cause) {
        counters.state = state;
        if (cause) counters.last_error = *cause;
        if (events.on_state) events.on_state(state, cause);
    }

    void start() {
        if (running) return;
        running = true;
        failures = 0;
        shuffle_urls();
        attempt();
    }

    void stop() {
        if (!running && counters.state == State::stopped) return;
        running = false;
        drop_connection();
        timer.cancel();
        set_state(State::stopped, nullptr);
    }

    void attempt() {
        waiting_to_retry = false;
        const auto generation = ++attempt_generation;
        // Refused stays refused until this attempt succeeds or fails for another reason.
        if (counters.state != State::refused) set_state(State::connecting, nullptr);
        std::weak_ptr<Impl> weak = weak_from_this();
        net::connect(io, target(), options.transport,
                     [weak, generation](Result<std::shared_ptr<net::Connection>> made) {
                         auto self = weak.lock();
                         if (!self || generation != self->attempt_generation) {
                             if (made) made.value()->close();
                             return;
                         }
                         if (!made) return self->fail(made.take_error());
                         self->on_connected(std::move(made.value()));
                     });
    }

    void on_connected(std::shared_ptr<net::Connection> made) {
        const auto generation = attempt_generation;
        connection = std::move(made);
        std::weak_ptr<Impl> weak = weak_from_this();
        connection->start(
            [weak, generation](Bytes message) {
                auto self = weak.lock();
                if (self && generation == self->attempt_generation) self->on_message(std::move(message));
            },
            [weak, generation](const Error& why) {
                auto self = weak.lock();
                if (self && generation == self->attempt_generation) self->fail(why);
            });

        timer.expires_after(options.handshake_timeout);
        timer.async_wait([weak, generation](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || generation != self->attempt_generation || self->records) return;
            self->fail(protocol::protocol_error(protocol::Reason::timeout, "no answer to the handshake"));
        });

        protocol::ClientOptions handshake_options;
        handshake_options.identity = options.identity;
        handshake_options.certificate = options.certificate;
        handshake_options.want_server_certificate = !options.gateway_cas.empty();
        handshake_options.pinned_server_keys = options.pinned_server_keys;
        handshake_options.requested_id = options.requested_id;
        handshake_options.server_name = target().server_name;
        handshake_options.resume_token = token;
        handshake_options.software = options.software;
        handshake_options.probe = options.probe;
        handshake.emplace(std::move(handshake_options));
        awaiting_finish = false;
        begin_step("handshake");
        send_raw(handshake->start(unix_time_ms()));
    }

    void on_message(Bytes message) {
        counters.bytes_in += message.size();
        if (records) return on_record(message);
        if (!handshake) return;
        if (!awaiting_finish) return on_server_hello(message);
        on_server_finish(message);
    }

    void on_server_hello(ByteView message) {
        auto reply = handshake->on_server_hello(message);
        const auto presented = crypto::fingerprint(handshake->server_key());
        if (!reply) {
            const auto reason = protocol::reason_of(reply.error());
            if (reason == protocol::Reason::server_key_mismatch) {
                end_step(true, fmt::format("gateway key {} signed the transcript", presented));
                begin_step("key");
            } else if (reason == protocol::Reason::unsupported_version && options.probe &&
                       handshake->server_key() != crypto::PublicKey{}) {
                // The gateway proved its key but takes no probe: the login is what is not tried.
                end_step(true, fmt::format("gateway key {} signed the transcript", presented));
                begin_step("auth");
            } else if (reason == protocol::Reason::stale_timestamp) {
                open_step = "clock";  // the gateway's own judgement of this host's clock
            }
            return fail(reply.take_error());
        }
        end_step(true, fmt::format("gateway key {} signed the transcript", presented));
        begin_step("key");
        if (!options.gateway_cas.empty()) {
            auto certified =
                certified_gateway(handshake->server_certificate(), handshake->server_key(), options.gateway_cas);
            if (!certified) return fail(certified.take_error());
            end_step(true, fmt::format("{} has certificate serial {} (id {}) from CA {}", presented, certified->serial,
                                       certified->id, crypto::fingerprint(certified->ca_key)));
            begin_step("certificate");
            const auto now_s = unix_time_ms() / 1000;
            auto valid = check_gateway_validity(certified.value(), now_s, options.max_clock_skew_ms / 1000);
            if (!valid) return fail(valid.take_error());
            end_step(true, fmt::format("valid {}; this host's time is {}", identity::format_validity(certified.value()),
                                       identity::format_time(now_s)));
        } else if (!options.pinned_server_keys.empty()) {
            end_step(true, fmt::format("{} is pinned", presented));
        } else if (events.on_server_key && events.on_server_key(handshake->server_key())) {
            end_step(true, fmt::format("{} accepted on first use", presented));
        } else {
            // Unpinned: the caller decides; with nobody to decide, the key is not trusted.
            return fail(protocol::protocol_error(protocol::Reason::server_key_mismatch,
                                                 fmt::format("gateway key {} not accepted", presented)));
        }
        awaiting_finish = true;
        begin_step("auth");
        send_raw(std::move(reply.value()));
    }

    void on_server_finish(ByteView message) {
        auto grant = handshake->on_server_finish(message);
        if (!grant) return fail(grant.take_error());
        if (grant->probe) {
            end_step(true, fmt::format("accepted as {} {} (a probe: no session opened or replaced)",
                                       to_string(grant->role), grant->assigned_id));
            handshake.reset();
            timer.cancel();
            granted = std::move(grant.value());
            set_state(State::connected, nullptr);
            return;
        }
        end_step(true, fmt::format("accepted as {} {}", to_string(grant->role), grant->assigned_id));
        const auto server_key = handshake->server_key();
        records.emplace(handshake->take_keys(), options.rekey, unix_time_ms());
        handshake.reset();
        timer.cancel();
        granted = std::move(grant.value());
        const bool new_token = granted->session_token != token;
        token = granted->session_token;
        connected_at = std::chrono::steady_clock::now();
        restart_until.reset();
        counters.connected_since = std::chrono::system_clock::now();
        if (ever_connected) ++counters.reconnects;
        ever_connected = true;
        set_state(State::connected, nullptr);
        subscriptions_sent = false;
        if (new_token && events.on_session_token) events.on_session_token(token);
        if (!records) return;  // the handler stopped the session
        if (events.on_authenticated) events.on_authenticated(*granted, server_key);
        if (!records) return;  // the handler stopped the session
        // Unless the handler already replaced the set on this connection, send the current one.
        if (!subscriptions_sent && !subscriptions.empty()) send_subscribe(subscriptions_request, subscriptions);
        schedule_heartbeat();
    }

    void begin_step(std::string_view name) {
        open_step = name;
        step_started = std::chrono::steady_clock::now();
    }

    // Reports the open step (if anyone listens) and closes it.
    void end_step(bool ok, std::string detail) {
        if (options.transport.on_step && !open_step.empty()) {
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - step_started);
            options.transport.on_step(net::ConnectStep{open_step, ok, elapsed, std::move(detail), {}});
        }
        open_step.clear();
    }

    void schedule_heartbeat() {
        if (options.heartbeat_interval.count() <= 0) return;
        const auto generation = attempt_generation;
        std::weak_ptr<Impl> weak = weak_from_this();
        heartbeat.expires_after(options.heartbeat_interval);
        heartbeat.async_wait([weak, generation](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || generation != self->attempt_generation || !self->records) return;
            if (self->events.on_heartbeat) self->events.on_heartbeat();
            if (generation == self->attempt_generation && self->records) self->schedule_heartbeat();
        });
    }

    void on_record(ByteView record) {
        auto plaintext = records->open(record);
        if (!plaintext) return fail(plaintext.take_error());
        auto frame = protocol::decode_frame(plaintext.value());
        if (!frame) {
            counters.last_error = frame.error();
            return;  // authentic but unreadable: a gateway bug, not worth the session
        }
        on_frame(std::move(frame.value()));
    }

    void on_frame(protocol::Frame frame) {
        using protocol::FrameType;
        switch (frame.type) {
            case FrameType::deliver: return on_deliver(frame);
            case FrameType::puback:
            case FrameType::suback: return answer(frame.request_id, Result<void>{});
            case FrameType::error: return answer(frame.request_id, protocol::protocol_error(frame.reason, frame.text));
            case FrameType::goodbye: {
                // Gateways before reason 17 said "replaced" with reason 0 (PROTOCOL.md §6 Goodbye).
                const auto reason = frame.reason == protocol::Reason::none ? protocol::Reason::replaced : frame.reason;
                if (reason == protocol::Reason::shutting_down)
                    restart_until = std::chrono::steady_clock::now() + kRestartWindow;
                auto why =
                    protocol::protocol_error(reason, frame.text.empty() ? "gateway closed the session" : frame.text);
                return fail(std::move(why));
            }
            // Frames only brokers send; a wire value outside FrameType never gets here (decode_frame refuses it).
            case FrameType::publish:
            case FrameType::subscribe:
            case FrameType::unsubscribe:
            case FrameType::deliver_ack:
                counters.last_error =
                    protocol::protocol_error(protocol::Reason::malformed, "unexpected frame from the gateway");
                return;
        }
    }

    void on_deliver(protocol::Frame& frame) {
        const auto generation = attempt_generation;
        auto batch = protocol::decode_batch(frame.batch);
        auto verified = batch ? protocol::verify_batch(batch.value()) : Result<void>(batch.error());
        if (!verified) {
            ++counters.rejected_batches;  // never delivered: its origin cannot be trusted
            if (events.on_rejected) events.on_rejected(frame.sequence, verified.error());
        } else {
            counters.messages_in += batch->messages.size();
            auto handled =
                events.on_deliver ? events.on_deliver(frame.sequence, std::move(batch.value())) : Result<void>{};
            if (!handled) {
                // Not acknowledged, and nothing after it either (deliver_ack is cumulative): the
                // connection ends, and the gateway delivers again from the last acknowledged point.
                if (generation == attempt_generation) fail(handled.take_error());
                return;
            }
        }
        // Handled (or worthless): the gateway may forget it. Not on a connection that ended meanwhile.
        if (generation == attempt_generation) acknowledge(frame.sequence);
    }

    void answer(std::uint32_t request_id, Result<void> outcome) {
        const auto found = pending.find(request_id);
        if (found == pending.end()) {
            if (!outcome) counters.last_error = outcome.error();
            return;
        }
        const auto kind = found->second;
        pending.erase(found);
        if (kind == RequestKind::publish && events.on_publish_result)
            events.on_publish_result(request_id, std::move(outcome));
        if (kind == RequestKind::subscribe && events.on_subscribe_result)
            events.on_subscribe_result(request_id, std::move(outcome));
    }

    // Closes the current connection and makes every callback of it stale.
    void drop_connection() {
        ++attempt_generation;
        if (records) past_rekeys += records->rekeys_sent() + records->rekeys_received();
        records.reset();
        handshake.reset();
        pending.clear();
        heartbeat.cancel();
        if (connection) {
            counters.last_rtt = connection->last_rtt();
            connection->close();
            connection.reset();
        }
    }

    void fail(Error why) {
        if (!open_step.empty()) end_step(false, why.message);
        const bool was_connected = records.has_value();
        const bool stable = was_connected && std::chrono::steady_clock::now() - connected_at >= kStableConnection;
        drop_connection();
        timer.cancel();
        if (!running) return;
        if (stops_retrying(protocol::reason_of(why))) {
            running = false;
            set_state(State::stopped, &why);
            return;
        }
        if (stable) failures = 0;
        next_url(was_connected);
        const bool refused = identity_refused(protocol::reason_of(why));
        // Replaced: another process holds this identity; coming straight back would knock it off in turn.
        const bool replaced = protocol::reason_of(why) == protocol::Reason::replaced;
        const bool restarting =
            !refused && !replaced && restart_until && std::chrono::steady_clock::now() < *restart_until;
        const auto delay = refused || replaced ? longest_delay() : restarting ? restart_delay() : next_delay();
        if (!restarting) ++failures;  // a gateway restarting is not this broker's failure
        counters.next_attempt = std::chrono::system_clock::now() + delay;
        set_state(refused ? State::refused : State::backing_off, &why);
        if (!running) return;  // the handler stopped the session
        const auto generation = attempt_generation;
        std::weak_ptr<Impl> weak = weak_from_this();
        waiting_to_retry = true;
        timer.expires_after(delay);
        timer.async_wait([weak, generation](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || !self->running || generation != self->attempt_generation) return;
            self->attempt();
        });
    }

    [[nodiscard]] const net::Url& target() const {
        const auto index = url_order[url_turn];
        return index == 0 ? options.url : options.other_urls[index - 1];
    }

    void shuffle_urls() {
        std::shuffle(url_order.begin(), url_order.end(), random);
        url_turn = 0;
    }

    // A failed attempt moves on to the next gateway; a session that ended, or a round that is
    // over, starts a fresh random order.
    void next_url(bool was_connected) {
        if (url_order.size() < 2) return;
        if (was_connected || ++url_turn == url_order.size()) shuffle_urls();
    }

    // Full jitter: uniform in [0, min(max, min * 2^failures)], then at least the floor.
    std::chrono::milliseconds next_delay() {
        const auto low = std::max(options.backoff_min, kBackoffFloor);
        const auto high = std::max(options.backoff_max, low);
        auto ceiling = low;
        for (std::uint32_t i = 0; i < failures && ceiling < high; ++i) ceiling *= 2;
        ceiling = std::min(ceiling, high);
        std::uniform_int_distribution<std::int64_t> pick(0, ceiling.count());
        return std::max(std::chrono::milliseconds(pick(random)), kBackoffFloor);
    }

    // Soon after a gateway said it is shutting down: uniform in [0.1 s, 1 s] (not above backoff_max).
    std::chrono::milliseconds restart_delay() {
        const auto high = std::clamp(options.backoff_max, kRestartDelayMin, kRestartDelayMax);
        std::uniform_int_distribution<std::int64_t> pick(kRestartDelayMin.count(), high.count());
        return std::chrono::milliseconds(pick(random));
    }

    bool reconnect_now() {
        if (!running || !waiting_to_retry) return false;
        timer.cancel();
        attempt();
        return true;
    }

    // A refused or replaced identity tries again at the maximum backoff, jittered over its upper half.
    std::chrono::milliseconds longest_delay() {
        const auto high = std::max({options.backoff_max, options.backoff_min, kBackoffFloor});
        std::uniform_int_distribution<std::int64_t> pick(high.count() / 2, high.count());
        return std::max(std::chrono::milliseconds(pick(random)), kBackoffFloor);
    }

    void send_raw(Bytes bytes) {
        if (!connection) return;
        counters.bytes_out += bytes.size();
        (void)connection->send(std::move(bytes));  // over the bound: the transport closes and on_close follows
    }

    void send_frame(const protocol::Frame& frame) {
        if (!records) return;
        send_raw(records->seal(protocol::encode_frame(frame), unix_time_ms()));
    }

    // Sends `patterns` as frames of at most kMaxPatternsPerFrame; only the last carries request_id,
    // so the caller's one answer arrives after the gateway has taken them all.
    void send_patterns(protocol::FrameType type, std::uint32_t request_id, const std::vector<std::string>& patterns) {
        for (std::size_t first = 0; first < patterns.size(); first += protocol::kMaxPatternsPerFrame) {
            const auto last = std::min(patterns.size(), first + protocol::kMaxPatternsPerFrame);
            protocol::Frame frame;
            frame.type = type;
            frame.request_id = last == patterns.size() ? request_id : kInternalRequest;
            frame.patterns.assign(patterns.begin() + static_cast<std::ptrdiff_t>(first),
                                  patterns.begin() + static_cast<std::ptrdiff_t>(last));
            send_frame(frame);
        }
    }

    void send_subscribe(std::uint32_t request_id, const std::vector<std::string>& patterns) {
        subscriptions_sent = true;
        pending[request_id] = RequestKind::subscribe;
        send_patterns(protocol::FrameType::subscribe, request_id, patterns);
    }

    bool publish(std::uint32_t request_id, const protocol::SignedBatch& batch) {
        if (!records) return false;
        protocol::Frame frame;
        frame.type = protocol::FrameType::publish;
        frame.request_id = request_id;
        frame.batch = protocol::encode_batch(batch);
        pending[request_id] = RequestKind::publish;
        counters.messages_out += batch.messages.size();
        send_frame(frame);
        return true;
    }

    void set_subscriptions(std::uint32_t request_id, std::vector<std::string> patterns) {
        std::vector<std::string> removed;
        for (const auto& old : subscriptions)
            if (std::find(patterns.begin(), patterns.end(), old) == patterns.end()) removed.push_back(old);
        subscriptions = std::move(patterns);
        subscriptions_request = request_id;
        if (records && !removed.empty()) {
            // The gateway's suback to the unsubscribe answers the request when nothing is left to add.
            if (subscriptions.empty()) pending[request_id] = RequestKind::subscribe;
            send_patterns(protocol::FrameType::unsubscribe, subscriptions.empty() ? request_id : kInternalRequest,
                          removed);
            if (subscriptions.empty()) return;
        }
        if (subscriptions.empty()) return answer_later(request_id);  // nothing to tell the gateway
        if (records) send_subscribe(request_id, subscriptions);
    }

    // Reports success for a request that needed no round trip, outside the caller's call.
    void answer_later(std::uint32_t request_id) {
        std::weak_ptr<Impl> weak = weak_from_this();
        boost::asio::post(io, [weak, request_id] {
            auto self = weak.lock();
            if (self && self->events.on_subscribe_result) self->events.on_subscribe_result(request_id, Result<void>{});
        });
    }

    void acknowledge(std::uint64_t sequence) {
        protocol::Frame frame;
        frame.type = protocol::FrameType::deliver_ack;
        frame.sequence = sequence;
        send_frame(frame);
    }

    SessionStats stats() const {
        SessionStats out = counters;
        out.rekeys = past_rekeys + (records ? records->rekeys_sent() + records->rekeys_received() : 0);
        if (connection) out.last_rtt = connection->last_rtt();
        return out;
    }
};

ClientSession::ClientSession(boost::asio::io_context& io, ClientSessionOptions options, SessionEvents events)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(events))) {}

ClientSession::~ClientSession() {
    impl_->events = SessionEvents{};  // no callbacks into an owner that is going away
    impl_->stop();
}

void ClientSession::start() {
    impl_->start();
}
void ClientSession::stop() {
    impl_->stop();
}
bool ClientSession::reconnect_now() {
    return impl_->reconnect_now();
}
bool ClientSession::publish(std::uint32_t request_id, const protocol::SignedBatch& batch) {
    return impl_->publish(request_id, batch);
}
void ClientSession::set_subscriptions(std::uint32_t request_id, std::vector<std::string> patterns) {
    impl_->set_subscriptions(request_id, std::move(patterns));
}
void ClientSession::acknowledge(std::uint64_t sequence) {
    impl_->acknowledge(sequence);
}
const protocol::SessionToken& ClientSession::session_token() const {
    return impl_->token;
}
SessionStats ClientSession::stats() const {
    return impl_->stats();
}
const protocol::Accepted* ClientSession::grant() const {
    return impl_->granted ? &*impl_->granted : nullptr;
}
const net::Url& ClientSession::current_url() const {
    return impl_->target();
}

}  // namespace aegis::session
