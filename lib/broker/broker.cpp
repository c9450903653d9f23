#include "broker/broker.h"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <csignal>
#include <variant>

#include "broker/broker_impl.h"
#include "broker/known_backends.h"
#include "core/clock.h"
#include "crypto/primitives.h"
#include "protocol/reason.h"

namespace aegis::broker {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

[[nodiscard]] std::string describe_grant(const protocol::Accepted& grant) {
    return fmt::format("{} ({})", grant.assigned_id, to_string(grant.role));
}

// A refusal during start-up that retrying cannot fix: report it instead of trying on.
[[nodiscard]] bool is_startup_refusal(const Error& error) {
    return error.exit == ExitCode::refused || error.exit == ExitCode::bad_input;
}

// The gateway of the current attempt (one of several URLs, or the only one).
[[nodiscard]] std::string gateway_text(const session::ClientSession* session, const BrokerConfig& config) {
    return session != nullptr ? canonical_url(session->current_url()) : config.url_text;
}

}  // namespace

Broker::Impl::Impl(asio::io_context& io_context, BrokerConfig broker_config, LogSink log_sink)
    : io(io_context),
      config(std::move(broker_config)),
      sink(std::move(log_sink)),
      next_sequence(unix_time_ms() * 1000),
      ready_timer(io_context),
      retry_timer(io_context),
      removal_timer(io_context),
      stop_timer(io_context),
      signals(io_context),
      cursor_full_timer(io_context) {}

void Broker::Impl::log(std::string_view line) const {
    if (sink) sink(line);
}

Result<void> Broker::Impl::start(ReadyHandler handler) {
    on_ready = std::move(handler);
    if (auto opened = open_state(); !opened) return opened;
    std::weak_ptr<Impl> weak = shared_from_this();
    ipc::ServerCallbacks callbacks;
    callbacks.on_frame = [weak](const std::shared_ptr<ipc::Peer>& peer, ipc::Frame frame) {
        if (auto self = weak.lock()) self->on_frame(peer, std::move(frame));
    };
    callbacks.on_close = [weak](const std::shared_ptr<ipc::Peer>& peer) {
        if (auto self = weak.lock()) self->on_peer_closed(peer);
    };
    callbacks.log = [weak](std::string_view line) {
        if (auto self = weak.lock()) self->log(line);
    };
    ipc::ServerLimits limits;
    limits.admitted_group = config.socket_group;
    auto listening = ipc::Server::listen(io, config.socket, std::move(callbacks), limits);
    if (!listening) return listening.take_error();
    server = std::move(*listening);
    log(fmt::format("listening on {}", config.socket.string()));

    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.add(SIGHUP);
    signals.add(SIGUSR1);
    wait_for_signal();

    session::SessionEvents events;
    events.on_state = [weak](session::State new_state, const Error* cause) {
        if (auto self = weak.lock()) self->on_state(new_state, cause);
    };
    events.on_server_key = [weak](const crypto::PublicKey& key) {
        auto self = weak.lock();
        return self && self->on_server_key(key);
    };
    events.on_authenticated = [weak](const protocol::Accepted& accepted, const crypto::PublicKey& key) {
        if (auto self = weak.lock()) self->on_authenticated(accepted, key);
    };
    events.on_deliver = [weak](std::uint64_t sequence, protocol::SignedBatch batch) -> Result<void> {
        auto self = weak.lock();
        if (!self) return make_error(ExitCode::failure, "the broker is gone");
        return self->on_deliver(sequence, std::move(batch));
    };
    events.on_rejected = [weak](std::uint64_t sequence, const Error& why) {
        if (auto self = weak.lock()) self->on_rejected(sequence, why);
    };
    events.on_publish_result = [weak](std::uint32_t request_id, Result<void> outcome) {
        if (auto self = weak.lock()) self->on_publish_result(request_id, outcome);
    };
    events.on_subscribe_result = [weak](std::uint32_t request_id, Result<void> outcome) {
        if (auto self = weak.lock()) self->on_subscribe_result(request_id, outcome);
    };
    events.on_heartbeat = [weak] {
        if (auto self = weak.lock()) self->enqueue_heartbeat();
    };
    session = std::make_unique<session::ClientSession>(io, config.session, std::move(events));
    state = session::State::connecting;
    log(fmt::format("connecting to {}", config.url_text));
    session->start();

    if (config.ready_when_listening) {
        report_ready(Ready{fmt::format("broker listening on {}; connecting to {} in the background",
                                       config.socket.string(), config.url_text)});
    } else {
        ready_timer.expires_after(config.ready_timeout);
        ready_timer.async_wait([weak](const boost::system::error_code& error) {
            auto self = weak.lock();
            if (error || !self || self->ready_reported) return;
            const auto seconds = std::chrono::duration<double>(self->config.ready_timeout).count();
            auto failure =
                make_error(ExitCode::timeout, "not connected to {} within {:g}s", self->config.url_text, seconds);
            if (self->last_error) failure.message += fmt::format(" (last error: {})", self->last_error->message);
            self->report_ready(failure);
        });
    }
    return {};
}

// SIGINT and SIGTERM stop the broker; SIGHUP reopens the log file and SIGUSR1 reconnects now, and
// both wait again.
void Broker::Impl::wait_for_signal() {
    signals.async_wait([weak = weak_from_this()](const boost::system::error_code& error, int number) {
        auto self = weak.lock();
        if (error || !self) return;
        if (number == SIGHUP) {
            self->reload();
            self->wait_for_signal();
            return;
        }
        if (number == SIGUSR1) {
            (void)self->reconnect_now("SIGUSR1");
            self->wait_for_signal();
            return;
        }
        self->log(fmt::format("received {}; stopping", number == SIGINT ? "SIGINT" : "SIGTERM"));
        self->stop();
    });
}

// "Reconnect now" (SIGUSR1, the local op reconnect): a broker waiting out its backoff, or
// refused, tries at once; a connected or connecting one is left alone.
bool Broker::Impl::reconnect_now(std::string_view asked_by) {
    const bool now = session && !stopping && session->reconnect_now();
    log(now ? fmt::format("{} asked to reconnect; connecting to {} now", asked_by, config.url_text)
            : fmt::format("{} asked to reconnect; nothing to do ({})", asked_by, session::to_string(state)));
    return now;
}

void Broker::Impl::reload() {
    if (!config.reopen_log) {
        log("received SIGHUP; nothing to reload (logging to stderr)");
        return;
    }
    auto reopened = config.reopen_log();
    // The line goes to the new file, or, when it cannot be opened, to the old one.
    log(reopened ? "received SIGHUP; log file reopened"
                 : fmt::format("received SIGHUP; cannot reopen the log file: {}", reopened.error().message));
}

void Broker::Impl::report_ready(const Result<Ready>& outcome) {
    if (ready_reported) return;
    ready_reported = true;
    ready_timer.cancel();
    if (!outcome) {
        startup_failure = outcome.error();
        log(fmt::format("start-up failed: {}", outcome.error().message));
    }
    if (on_ready) on_ready(outcome);
    if (!outcome) stop();
}

void Broker::Impl::stop() {
    if (stopping) return;
    stopping = true;
    stop_started = std::chrono::steady_clock::now();
    log("stopping");
    ready_timer.cancel();
    retry_timer.cancel();
    cursor_full_timer.cancel();
    // Drops held back for the next "inbox full" line are not lost with the broker.
    for (const auto& [name, count] : cursor_full_lines.due(std::chrono::steady_clock::now() + std::chrono::hours(1)))
        log(fmt::format("durable subscription {}: inbox full, {} more oldest message(s) dropped", name, count));
    removal_timer.cancel();
    boost::system::error_code ignored;
    signals.cancel(ignored);
    if (server) server->stop_accepting();
    flush_publishes();   // what was accepted in this turn is committed and answered
    settle_publishes();  // with what waited for its sync
    if (session) session->stop();
    fail_waiters(protocol::protocol_error(protocol::Reason::shutting_down, "the broker is stopping"));
    for (const auto& pending : subscription_changes.take_waiting()) {
        fail(pending.waiter,
             ipc::wire_error(protocol::Reason::shutting_down, "the broker is stopping", ExitCode::failure));
    }
    if (server) server->close_all();
    check_stopped();
}

// Polls until every local client is gone (their last frames written) or the grace time ends,
// then stops the io_context, which the session's own timers might otherwise keep busy.
void Broker::Impl::check_stopped() {
    const bool drained = !server || server->peers() == 0;
    if (drained || std::chrono::steady_clock::now() - stop_started > kStopGrace) {
        log("stopped");
        session.reset();
        io.stop();
        return;
    }
    stop_timer.expires_after(std::chrono::milliseconds(20));
    stop_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
        if (auto self = weak.lock(); self && !error) self->check_stopped();
    });
}

std::uint32_t Broker::Impl::next_request_id() {
    if (++request_counter == 0) ++request_counter;  // 0 means "no request" on the wire
    return request_counter;
}

bool Broker::Impl::connected() const {
    return state == session::State::connected && !stopping;
}

void Broker::Impl::on_frame(const std::shared_ptr<ipc::Peer>& peer, ipc::Frame frame) {
    peers.try_emplace(peer->id(), peer);
    auto parsed = ipc::parse_request(frame.header);
    // A publish's answer follows the earlier ones through its group. Any other answer is written
    // now, so the publishes before it are committed and answered first: the answers on one
    // connection keep the order of its requests (PROTOCOL.md §8.3).
    const auto* parsed_request = std::get_if<ipc::Request>(&parsed);
    if (parsed_request == nullptr || (!std::holds_alternative<ipc::PublishRequest>(parsed_request->body) &&
                                      !std::holds_alternative<ipc::PublishBatchRequest>(parsed_request->body))) {
        if (outbound_flow.has_commit_work()) flush_publishes();
        settle_publishes();
    }
    if (auto* bad = std::get_if<ipc::RequestError>(&parsed)) {
        log(fmt::format("local client {} (pid {}): {}: {}", peer->id(), peer->pid(), ipc::name(bad->error.reason),
                        bad->error.message));
        peer->send(ipc::error_response(bad->id, ipc::to_wire(bad->error)));
        return;
    }
    auto& request = std::get<ipc::Request>(parsed);
    const Waiter waiter{peer, request.id};
    if (auto* hello = std::get_if<ipc::HelloRequest>(&request.body)) {
        if (hello->version != ipc::kVersion) {
            auto response = ipc::error_response(
                request.id, ipc::to_wire(ipc::LocalError{ipc::LocalReason::version_mismatch,
                                                         fmt::format("local protocol version {} is not supported (this "
                                                                     "broker speaks {})",
                                                                     hello->version, ipc::kVersion)}));
            response["versions"] = json::array({ipc::kVersion});
            peer->send(response);
            return;
        }
        greeted[peer->id()] = true;
        answer(waiter, json{{"v", ipc::kVersion},
                            {"versions", json::array({ipc::kVersion})},
                            {"broker", fmt::format("aegis-connect {}", AEGIS_VERSION)},
                            {"pid", static_cast<long>(::getpid())},
                            {"features", json::array({ipc::kPublishBatchFeature, ipc::kMessageBatchFeature})},
                            {"state", session::to_string(state)},
                            {"refusal", refusal_json()}});
        return;
    }
    if (!greeted[peer->id()]) {
        fail(waiter, ipc::to_wire(ipc::LocalError{ipc::LocalReason::hello_required,
                                                  "the first request on a connection must be hello"}));
        return;
    }
    if (stopping) {
        fail(waiter, ipc::wire_error(protocol::Reason::shutting_down, "the broker is stopping", ExitCode::failure));
        return;
    }
    std::visit(
        [&](auto& body) {
            using Body = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<Body, ipc::PublishRequest>) {
                handle_publish(peer, request.id, std::move(body), std::move(frame.payload));
            } else if constexpr (std::is_same_v<Body, ipc::PublishBatchRequest>) {
                handle_publish_batch(peer, request.id, std::move(body), std::move(frame.payload));
            } else if constexpr (std::is_same_v<Body, ipc::SubscribeRequest>) {
                if (body.durable.empty()) {
                    handle_subscribe(peer, request.id, std::move(body));
                } else {
                    handle_durable_subscribe(peer, waiter, std::move(body));
                }
            } else if constexpr (std::is_same_v<Body, ipc::QueueRequest>) {
                settle_removals();
                handle_queue_op(waiter, body);
            } else if constexpr (std::is_same_v<Body, ipc::AckRequest>) {
                handle_ack(waiter, body);
            } else if constexpr (std::is_same_v<Body, ipc::CursorDeleteRequest>) {
                handle_cursor_delete(waiter, body);
            } else if constexpr (std::is_same_v<Body, ipc::CursorListRequest>) {
                handle_cursor_list(waiter);
            } else if constexpr (std::is_same_v<Body, ipc::StatusRequest>) {
                settle_removals();
                expire_due();
                answer(waiter, json{{"status", status()}});
            } else if constexpr (std::is_same_v<Body, ipc::ReconnectRequest>) {
                const auto before = state;
                const bool now = reconnect_now(fmt::format("local client {} (pid {})", peer->id(), peer->pid()));
                answer(waiter, json{{"state", std::string(session::to_string(before))}, {"reconnecting", now}});
            } else if constexpr (std::is_same_v<Body, ipc::StopRequest>) {
                log(fmt::format("stop requested by local client {} (pid {})", peer->id(), peer->pid()));
                answer(waiter, json::object());
                asio::post(io, [weak = weak_from_this()] {
                    if (auto self = weak.lock()) self->stop();
                });
            }
        },
        request.body);
}

void Broker::Impl::on_peer_closed(const std::shared_ptr<ipc::Peer>& peer) {
    peers.erase(peer->id());
    greeted.erase(peer->id());
    forget_subscriber(peer->id());
    forget_durable(peer->id());
}

void Broker::Impl::on_state(session::State new_state, const Error* cause) {
    // A key recorded on first use that no longer matches: say where it is and what to do.
    Error explained;
    if (cause != nullptr && config.pinned_by_known_backends &&
        protocol::reason_of(*cause) == protocol::Reason::server_key_mismatch) {
        explained = *cause;
        explained.message += fmt::format(
            "; the pinned key is the one recorded for {} in {}: if the gateway's key was changed on purpose, remove "
            "that line (or the file) and start aegis-connect --accept-new again; if not, something may be "
            "impersonating the gateway",
            gateway_text(session.get(), config), config.pinned_by_known_backends->string());
        cause = &explained;
    }
    const auto previous = state;
    state = new_state;
    if (cause != nullptr) last_error = *cause;
    const auto line = cause != nullptr ? fmt::format("session {}: {}", session::to_string(new_state), cause->message)
                                       : fmt::format("session {}", session::to_string(new_state));
    log(line);
    if (config.on_status && new_state != session::State::connected) config.on_status(line);
    if (previous == session::State::connected && new_state != session::State::connected) {
        disconnected_since_ms = unix_time_ms();
        outbound_flow.clear_window();
        // What the gateway acknowledged goes first, or it would be released and sent again.
        if (outbound_flow.has_unremoved()) flush_publishes();
        queue->release_in_flight();  // not known to be stored: sent again after the next handshake
    }
    if (stopping) return;
    if (new_state == session::State::refused && cause != nullptr && ready_reported) {
        // The session tries again at its maximum backoff; meanwhile nothing comes or goes.
        const auto wire = refusal_error();
        for (const auto& waiter : outbound_flow.take_waiters()) fail(waiter, wire);  // their messages stay queued
        drop_live_subscribers(wire);
        return;
    }
    if (new_state == session::State::stopped && cause != nullptr) {
        fail_waiters(*cause);  // a session that will not come back cannot ack them
        if (!ready_reported) report_ready(*cause);
        return;
    }
    if (!ready_reported && cause != nullptr && is_startup_refusal(*cause)) report_ready(*cause);
}

bool Broker::Impl::on_server_key(const crypto::PublicKey& key) {
    if (!config.known_backends) {
        log("refused an unpinned gateway key (no --backend-key and no --accept-new)");
        return false;
    }
    const auto url = gateway_text(session.get(), config);
    if (auto recorded = record_known_backend(*config.known_backends, url, key); !recorded) {
        log(fmt::format("cannot record the gateway key: {}", recorded.error().message));
        return false;
    }
    log(fmt::format("accepted new gateway key {} for {} (recorded in {})", crypto::fingerprint(key), url,
                    config.known_backends->string()));
    return true;
}

void Broker::Impl::on_authenticated(const protocol::Accepted& accepted, const crypto::PublicKey& key) {
    grant = accepted;
    policy.emplace(accepted.role, accepted.assigned_id);
    server_key = key;
    state = session::State::connected;
    const auto summary = fmt::format("connected to {} as {}; backend {}", gateway_text(session.get(), config),
                                     describe_grant(accepted), crypto::fingerprint(key));
    log(summary);
    if (config.on_status) config.on_status(summary);
    report_ready(Ready{summary});
    SubscriptionSessionView session_view(*this);
    subscription_changes.resend(session_view);
    advance_subscriptions();
    pump();
}

json Broker::Impl::status() const {
    const auto stats = session ? session->stats() : session::SessionStats{};
    json out{{"state", session::to_string(state)},
             {"url", gateway_text(session.get(), config)},
             {"socket", config.socket.string()},
             {"pid", static_cast<long>(::getpid())},
             {"version", AEGIS_VERSION},
             {"batch_format", config.batch_format},
             {"uptime_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count()},
             {"reconnects", stats.reconnects},
             {"rekeys", stats.rekeys},
             {"rtt_ms", std::chrono::duration<double, std::milli>(stats.last_rtt).count()},
             {"messages_in", stats.messages_in},
             {"messages_out", stats.messages_out},
             {"bytes_in", stats.bytes_in},
             {"bytes_out", stats.bytes_out},
             {"queue", queue_status()},
             {"local",
              {{"clients", peers.size()},
               {"subscribers", subscription_changes.confirmed().subscribers()},
               {"published", published_local},
               {"acked", acked},
               {"dropped", dropped},
               {"delivered", delivered_local + durable->delivered()},
               {"duplicates", duplicates},
               {"rejected", stats.rejected_batches}}},
             {"subscriptions", subscription_changes.confirmed_set()},
             {"channels", channels_status()}};
    if (server_key) out["server_fingerprint"] = crypto::fingerprint(*server_key);
    if (grant) {
        out["assigned_id"] = grant->assigned_id;
        out["role"] = to_string(grant->role);
        out["session_id"] = crypto::hex_encode(grant->session_id);
    }
    if (state == session::State::connected) {
        const auto age = std::chrono::system_clock::now() - stats.connected_since;
        out["session_age_s"] = std::chrono::duration<double>(age).count();
        out["connected_since_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(stats.connected_since.time_since_epoch()).count();
    }
    if ((state == session::State::backing_off || state == session::State::refused) &&
        stats.next_attempt.time_since_epoch().count() != 0) {
        out["next_attempt_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(stats.next_attempt.time_since_epoch()).count();
    }
    out["last_heartbeat_ms"] = last_heartbeat_ms;
    if (state != session::State::connected && disconnected_since_ms != 0) {
        out["disconnected_since_ms"] = disconnected_since_ms;
    }
    out["durable_cursors"] = durable->size();
    if (state == session::State::refused) out["refusal"] = refusal_json();
    if (store_error) {
        out["store_error"] = {{"message", store_error->message}, {"since_ms", store_error_since_ms}};
    }
    if (last_error) {
        const auto reason = protocol::reason_of(*last_error);
        out["last_error"] = {
            {"reason", reason == protocol::Reason::none ? ipc::name(ipc::LocalReason::failed) : protocol::name(reason)},
            {"message", last_error->message}};
    }
    return out;
}

ipc::WireError Broker::Impl::refusal_error() const {
    const auto reason = last_error ? protocol::reason_of(*last_error) : protocol::Reason::revoked;
    return ipc::WireError{
        std::string(protocol::name(reason)),
        fmt::format("the gateway refuses this broker's identity ({}: {}); nothing is delivered until it is "
                    "authorized again",
                    protocol::name(reason), last_error ? last_error->message : "refused"),
        ExitCode::refused};
}

json Broker::Impl::refusal_json() const {
    if (state != session::State::refused) return nullptr;
    const auto wire = refusal_error();
    return json{{"reason", wire.reason}, {"message", wire.message}};
}

void Broker::Impl::drop_live_subscribers(const ipc::WireError& why) {
    for (const auto& pending : subscription_changes.take_waiting_live()) fail(pending.waiter, why);
    // Collected first: a peer that closes at once leaves `peers` (on_peer_closed).
    std::vector<std::shared_ptr<ipc::Peer>> subscribers;
    for (const auto& [id, weak] : peers) {
        if (!subscription_changes.confirmed().contains(id)) continue;
        if (auto peer = weak.lock()) subscribers.push_back(std::move(peer));
    }
    for (const auto& peer : subscribers) {
        peer->send(ipc::error_response(nullptr, why));
        peer->close_after_writes();
    }
}

Broker::Broker(asio::io_context& io, BrokerConfig config, LogSink log)
    : impl_(std::make_shared<Impl>(io, std::move(config), std::move(log))) {}

Broker::~Broker() {
    if (impl_) impl_->session.reset();
}

Result<void> Broker::start(ReadyHandler on_ready) {
    return impl_->start(std::move(on_ready));
}
void Broker::stop() {
    impl_->stop();
}
const std::optional<Error>& Broker::startup_failure() const {
    return impl_->startup_failure;
}

Result<void> run_broker(BrokerConfig config, LogSink log, ReadyHandler on_ready) {
    asio::io_context io;
    Broker broker(io, std::move(config), std::move(log));
    if (auto started = broker.start(std::move(on_ready)); !started) return started;
    io.run();
    if (broker.startup_failure()) return *broker.startup_failure();
    return {};
}

}  // namespace aegis::broker
