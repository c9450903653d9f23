#include "gateway/gateway.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <map>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/log_throttle.h"
#include "core/service_notify.h"
#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/channel_admin.h"
#include "gateway/gateway_session.h"
#include "gateway/revocation_list.h"
#include "gateway/session_host.h"
#include "identity/certificate.h"
#include "identity/keyfile.h"
#include "net/websocket.h"
#include "protocol/reason.h"
#include "store/gateway_store.h"
#include "store/private_files.h"

namespace aegis::gateway {

namespace {

// Room for the record and frame headers around the largest batch we accept.
constexpr std::size_t kFrameOverhead = 4096;
// Connections still in their handshake beyond the session cap.
constexpr std::size_t kHandshakeHeadroom = 64;
// Session tokens and deliver_acks wait at most this long for a group commit to carry them to the
// file: a burst of handshakes, or a stream of acks between publishes, then costs one commit, not
// one per event-loop turn. Neither needs to be on file before it is answered: a token lost in a
// crash gives a fresh session, an ack lost gives a redelivery, which the receiver drops.
constexpr std::chrono::milliseconds kLazyCommitDelay{200};

Result<void> check_options(const GatewayOptions& options) {
    if (options.listen.rfind(':') == std::string::npos)
        return make_error(ExitCode::usage, "--listen wants HOST:PORT, not '{}'", options.listen);
    if (!options.admin.empty() && options.admin.rfind(':') == std::string::npos)
        return make_error(ExitCode::usage, "--admin wants HOST:PORT, not '{}'", options.admin);
    if (options.tls_cert_file.empty() != options.tls_key_file.empty())
        return make_error(ExitCode::usage, "--tls-cert and --tls-key go together");
    if (options.authorized_file.empty()) return make_error(ExitCode::usage, "--authorized FILE is required");
    if (options.state_dir.empty()) return make_error(ExitCode::usage, "--state-dir DIR is required");
    if (options.max_sessions == 0) return make_error(ExitCode::usage, "--max-sessions must be at least 1");
    if (options.max_message_bytes < 1024)
        return make_error(ExitCode::usage, "--max-message-bytes must be at least 1024");
    if (options.handshake_timeout.count() <= 0)
        return make_error(ExitCode::usage, "--handshake-timeout must be positive");
    if (options.inbox_max_messages == 0) return make_error(ExitCode::usage, "--inbox-max-messages must be at least 1");
    if (options.inbox_max_age.count() <= 0) return make_error(ExitCode::usage, "--inbox-max-age must be positive");
    if (options.replay_window == 0) return make_error(ExitCode::usage, "--replay-window must be at least 1");
    return {};
}

// How often stored messages past --inbox-max-age are pruned.
std::chrono::milliseconds expiry_interval(std::chrono::seconds max_age) {
    return std::clamp<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(max_age) / 4,
                                                 std::chrono::milliseconds(250), std::chrono::milliseconds(60'000));
}

// "HOST:PORT" with the port the socket really got (for --listen HOST:0).
std::string with_port(const std::string& host_port, std::uint16_t port) {
    return fmt::format("{}:{}", host_port.substr(0, host_port.rfind(':')), port);
}

}  // namespace

struct Gateway::Core final : SessionHost, std::enable_shared_from_this<Gateway::Core> {
    Core(boost::asio::io_context& io_context, GatewayOptions gateway_options, crypto::SigningKey key, LogSink sink,
         std::unique_ptr<store::GatewayStore> state)
        : io(io_context),
          options(std::move(gateway_options)),
          identity(std::move(key)),
          log_sink(std::move(sink)),
          replay_cache(2 * static_cast<std::uint64_t>(options.clock_skew.count())),
          routes(make_local_backplane()),
          stored(std::move(state)),
          expiry_timer(io_context),
          lazy_timer(io_context),
          full_lines(options.drop_log_interval),
          full_timer(io_context) {}

    // A publish waiting for this turn's group commit.
    struct PendingPublish {
        std::weak_ptr<GatewaySession> from;
        crypto::PublicKey origin{};
        std::uint32_t request_id = 0;
        std::string channel;
        Bytes batch;
        std::size_t messages = 0;
        bool fsync = true;
        bool request = false;        // holds a request: refused when no identity would receive it
        bool no_responders = false;  // set by flush(): nothing of it was stored
    };

    boost::asio::io_context& io;
    GatewayOptions options;
    crypto::SigningKey identity;
    Bytes own_certificate;   // of `identity`, sent to brokers that trust the gateway by CA; empty: none
    RevocationList revoked;  // --revoked: refused whatever the authorized file says
    LogSink log_sink;
    protocol::ReplayCache replay_cache;
    std::unique_ptr<Backplane> routes;
    AuthorizedKeys authorized;
    GatewayMetrics counters;
    std::optional<ChannelAdmin> channels;
    std::unique_ptr<net::Server> server;
    std::unique_ptr<net::AdminServer> admin;
    std::map<SessionHandle, std::shared_ptr<GatewaySession>> sessions;
    std::map<crypto::PublicKey, SessionHandle> session_of_key;
    SessionHandle next_handle = 1;
    bool stopping = false;
    std::unique_ptr<store::GatewayStore> stored;
    std::vector<PendingPublish> pending_publishes;
    std::map<crypto::PublicKey, std::uint64_t> pending_acks;
    bool flush_posted = false;
    boost::asio::steady_timer expiry_timer;
    boost::asio::steady_timer lazy_timer;
    bool lazy_commit_scheduled = false;
    LogThrottle full_lines;  // "inbox full", per identity id
    boost::asio::steady_timer full_timer;
    bool full_timer_scheduled = false;
    std::chrono::steady_clock::time_point last_limit_line{};
    std::uint64_t unlogged_limit_refusals = 0;

    // Walks every identity: run when the gauge is read (a scrape, the log), not per commit.
    void update_inbox_gauge() {
        std::uint64_t total = 0;
        for (const auto& [key, state] : stored->identities()) total += state.pending;
        counters.inbox_messages = total;
    }

    std::shared_ptr<GatewaySession> session_for(const crypto::PublicKey& key) {
        const auto handle = session_of_key.find(key);
        if (handle == session_of_key.end()) return nullptr;
        const auto session = sessions.find(handle->second);
        return session == sessions.end() ? nullptr : session->second;
    }

    // The identities whose stored set matches CHANNEL and who may still receive it, other than the origin.
    std::vector<crypto::PublicKey> recipients(const std::string& channel, const crypto::PublicKey& origin) {
        std::vector<crypto::PublicKey> out;
        for (const auto& key : stored->routing_candidates(channel)) {
            if (key == origin) continue;
            const auto* stored_state = stored->find(key);
            if (stored_state == nullptr) continue;
            const auto& state = *stored_state;
            // The cheap test first: a candidate's patterns need not match at all.
            if (std::none_of(state.patterns.begin(), state.patterns.end(),
                             [&](const std::string& p) { return channel::matches(p, channel); }))
                continue;
            const auto* now = authorized.find(key);
            if (now == nullptr || now->id != state.id) continue;  // revoked or renamed: routes nothing
            const channel::AccessPolicy policy(now->role, now->id, now->publish_narrowing, now->subscribe_narrowing);
            const bool wanted = std::any_of(state.patterns.begin(), state.patterns.end(), [&](const std::string& p) {
                return channel::matches(p, channel) && policy.may_subscribe(p);
            });
            if (wanted) out.push_back(key);
        }
        return out;
    }

    void post_flush() {
        if (flush_posted) return;
        flush_posted = true;
        std::weak_ptr<Core> weak = weak_from_this();
        boost::asio::post(io, [weak] {
            if (auto self = weak.lock()) self->flush();
        });
    }

    // Tokens and acks ride along with the next group commit; when none comes within
    // kLazyCommitDelay, one is made for them.
    void schedule_lazy_commit() {
        if (lazy_commit_scheduled || stopping) return;
        lazy_commit_scheduled = true;
        std::weak_ptr<Core> weak = weak_from_this();
        lazy_timer.expires_after(kLazyCommitDelay);
        lazy_timer.async_wait([weak](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!self) return;
            self->lazy_commit_scheduled = false;
            // Cancelled at shutdown, whose own flush() stores them.
            if (!ec && (self->stored->has_unsaved_tokens() || !self->pending_acks.empty())) self->flush();
        });
    }

    // Group commit: every publish and ack of this event-loop turn in one transaction, then the
    // pubacks, then the deliveries.
    void flush() {
        flush_posted = false;
        auto publishes = std::move(pending_publishes);
        auto acks = std::move(pending_acks);
        pending_publishes.clear();
        pending_acks.clear();
        if (publishes.empty() && acks.empty() && !stored->has_unsaved_tokens()) return;
        std::vector<crypto::PublicKey> touched;
        std::map<std::string, std::uint64_t> full;
        auto committed = [&]() -> Result<void> {
            // A puback promises the batch survives power loss, unless it holds only requests and
            // replies (protocol::bounded_by_requester); a lost ack only means a redelivery.
            const bool fsync = std::any_of(publishes.begin(), publishes.end(), [](const auto& p) { return p.fsync; });
            auto transaction = stored->begin(fsync ? store::Durability::power_loss : store::Durability::process_crash);
            if (!transaction) return transaction.take_error();
            // The session tokens of this turn's handshakes first: a new identity's row with them.
            if (auto saved = stored->save_tokens(); !saved) return saved;
            for (const auto& [key, sequence] : acks)
                if (auto acked = stored->acknowledge(key, sequence); !acked) return acked;
            const auto now = unix_time_ms();
            for (auto& publish : publishes) {
                const auto keys = recipients(publish.channel, publish.origin);
                // A request nobody would receive is refused at once rather than left unanswered.
                publish.no_responders = publish.request && keys.empty();
                for (const auto& key : keys) {
                    auto appended = stored->append(key, publish.channel, publish.batch, publish.messages, now);
                    if (!appended) return appended.take_error();
                    if (appended->dropped > 0) full[stored->find(key)->id] += appended->dropped;
                    if (std::find(touched.begin(), touched.end(), key) == touched.end()) touched.push_back(key);
                }
            }
            return transaction->commit();
        }();
        if (!committed) {
            ++counters.store_failures;
            // Session tokens stay remembered and are tried again with the next commit.
            log(fmt::format("cannot store {} batches, {} acknowledgements and the session tokens: {}", publishes.size(),
                            acks.size(), committed.error().message));
            if (auto reloaded = stored->reload(); !reloaded)
                log(fmt::format("cannot re-read the state file: {}", reloaded.error().message));
            if (stored->has_unsaved_tokens()) schedule_lazy_commit();
        } else {
            stored->tokens_saved();
            ++counters.store_commits;
        }
        for (const auto& [id, messages] : full) report_full(id, messages);
        for (const auto& publish : publishes) {
            auto from = publish.from.lock();
            if (!from) continue;
            if (committed.ok() && publish.no_responders) {
                from->publish_refused(publish.request_id, protocol::Reason::no_responders,
                                      fmt::format("no responders on {}", publish.channel));
            } else {
                from->publish_stored(publish.request_id, publish.messages, committed.ok());
            }
        }
        for (const auto& key : touched)
            if (auto session = session_for(key)) session->pump();
    }

    // A full inbox drops at every commit while its owner is away: one line per identity per
    // interval, the drops in between counted into the next line (or reported when it is over).
    void report_full(const std::string& id, std::uint64_t messages) {
        counters.count_dropped("full", messages);
        if (const auto total = full_lines.note(id, messages, std::chrono::steady_clock::now())) {
            log(fmt::format("inbox of id={} is full (--inbox-max-messages {}): dropped {} oldest messages", id,
                            options.inbox_max_messages, *total));
        }
        schedule_full_report();
    }

    void schedule_full_report() {
        const auto due = full_lines.next_due();
        if (!due || full_timer_scheduled || stopping) return;
        full_timer_scheduled = true;
        std::weak_ptr<Core> weak = weak_from_this();
        full_timer.expires_at(*due);
        full_timer.async_wait([weak](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!self) return;
            self->full_timer_scheduled = false;
            if (ec) return;
            self->report_held_full(std::chrono::steady_clock::now());
            self->schedule_full_report();
        });
    }

    // The drops held back whose interval has passed by `as_of`.
    void report_held_full(std::chrono::steady_clock::time_point as_of) {
        const auto seconds = std::chrono::duration<double>(full_lines.interval()).count();
        for (const auto& [id, messages] : full_lines.due(as_of)) {
            log(
                fmt::format("inbox of id={} is full (--inbox-max-messages {}): dropped {} more oldest messages in the "
                            "last {:g} s",
                            id, options.inbox_max_messages, messages, seconds));
        }
    }

    void save_tokens_now() {
        auto saved = [&]() -> Result<void> {
            auto transaction = stored->begin(store::Durability::process_crash);
            if (!transaction) return transaction.take_error();
            if (auto written = stored->save_tokens(); !written) return written;
            return transaction->commit();
        }();
        if (saved) {
            stored->tokens_saved();
        } else {
            log(fmt::format("cannot store the session tokens: {}", saved.error().message));
        }
    }

    void schedule_expiry() {
        std::weak_ptr<Core> weak = weak_from_this();
        expiry_timer.expires_after(expiry_interval(options.inbox_max_age));
        expiry_timer.async_wait([weak](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopping) return;
            self->expire();
            self->schedule_expiry();
        });
    }

    void expire() {
        if (!pending_acks.empty()) flush();  // what was acknowledged did not expire unacknowledged
        auto dropped = stored->expire(unix_time_ms());
        if (!dropped) {
            log(fmt::format("cannot prune expired messages: {}", dropped.error().message));
            return;
        }
        for (const auto& [id, messages] : dropped.value()) {
            counters.count_dropped("expired", messages);
            log(fmt::format("inbox of id={}: {} messages expired unacknowledged (--inbox-max-age {} s)", id, messages,
                            options.inbox_max_age.count()));
        }
        update_inbox_gauge();
    }

    // SessionHost: storage
    Result<ResumeGrant> resume(const AuthorizedIdentity& who, const protocol::SessionToken& presented) override {
        const auto now = unix_time_ms();
        ResumeGrant grant;
        grant.resumed = stored->token_valid(who.key, presented, now);
        if (grant.resumed) {
            grant.token = presented;
        } else {
            crypto::random_bytes(grant.token);
        }
        stored->remember_token(who.key, who.id, grant.token, now);  // on file with a group commit soon
        schedule_lazy_commit();
        const auto* state = stored->find(who.key);
        // An ack of the previous session still waiting for the group commit counts too.
        const auto queued = pending_acks.find(who.key);
        grant.resume_point = std::max(state->acknowledged, queued == pending_acks.end() ? 0 : queued->second);
        grant.patterns = state->patterns;
        ++(grant.resumed ? counters.sessions_resumed : counters.sessions_fresh);
        return grant;
    }

    void publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                 Bytes batch, std::size_t messages, bool fsync, bool request) override {
        pending_publishes.push_back(PendingPublish{from, from->identity().key, request_id, std::move(channel),
                                                   std::move(batch), messages, fsync, request});
        post_flush();
    }

    void acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) override {
        auto& highest = pending_acks[key];
        highest = std::max(highest, sequence);
        schedule_lazy_commit();
    }

    void subscriptions_changed(const AuthorizedIdentity& who, const std::vector<std::string>& patterns) override {
        if (auto saved = stored->save_patterns(who.key, who.id, patterns); !saved) {
            ++counters.store_failures;
            log(fmt::format("cannot store the subscriptions of id={}: {}", who.id, saved.error().message));
        }
    }

    Result<std::vector<store::StoredBatch>> inbox(const crypto::PublicKey& key, std::uint64_t after,
                                                  std::size_t limit) override {
        return stored->read_after(key, after, limit);
    }

    // SessionHost
    // Who a key is now: its line, or the certificate it came with (judged at the present time).
    Result<AuthorizedIdentity> authorize(const crypto::PublicKey& key, ByteView certificate) const {
        auto found = authorized.authorize(key, certificate, unix_time_ms() / 1000,
                                          static_cast<std::uint64_t>(options.clock_skew.count()) / 1000);
        if (!found) return found;
        if (auto why = revoked.revokes(key, found->certificate))
            return protocol::protocol_error(protocol::Reason::revoked, *why);
        return found;
    }

    Result<AuthorizedIdentity> admit(const crypto::PublicKey& key, ByteView certificate) override {
        if (stopping) return protocol::protocol_error(protocol::Reason::shutting_down);
        auto found = authorize(key, certificate);
        if (!found) return found.take_error();
        const bool replaces = session_of_key.count(key) != 0;
        if (!replaces && counters.sessions >= options.max_sessions)
            return protocol::protocol_error(protocol::Reason::busy, fmt::format("{} sessions open", counters.sessions));
        return found;
    }

    void established(const std::shared_ptr<GatewaySession>& session) override {
        const auto& who = session->identity();
        if (const auto old = session_of_key.find(who.key); old != session_of_key.end()) {
            if (const auto previous = sessions.find(old->second); previous != sessions.end())
                previous->second->close_with(protocol::Reason::replaced, "a newer session of this identity logged in");
        }
        session_of_key[who.key] = session->handle();
        ++counters.sessions;
        ++counters.handshakes_ok;
    }

    void closed(GatewaySession& session, std::string_view why) override {
        if (session.identity().id.empty()) {
            log(fmt::format("disconnect peer={} reason={}", session.peer(), why));
        } else {
            log(fmt::format("disconnect id={} peer={} reason={}", session.identity().id, session.peer(), why));
            const auto mine = session_of_key.find(session.identity().key);
            if (mine != session_of_key.end() && mine->second == session.handle()) {
                session_of_key.erase(mine);
                // Token expiry counts from the last disconnect.
                stored->remember_token(session.identity().key, session.identity().id, session.token(), unix_time_ms());
                if (stopping) {
                    save_tokens_now();  // the event loop may not run the group commit any more
                } else {
                    schedule_lazy_commit();
                }
            }
            if (counters.sessions > 0) --counters.sessions;
        }
        sessions.erase(session.handle());  // the caller holds its own reference while it returns
        counters.connections = sessions.size();
    }

    const std::string* disabled_by(std::string_view channel) const override {
        return channels ? channels->disabled_by(channel) : nullptr;
    }
    Backplane& backplane() override { return *routes; }
    GatewayMetrics& metrics() override { return counters; }
    void log(std::string_view line) override {
        if (log_sink) log_sink(line);
    }

    void on_accept(std::shared_ptr<net::Connection> connection) {
        if (stopping) {
            connection->close();
            return;
        }
        SessionSettings settings;
        settings.identity = &identity;
        settings.certificate = own_certificate;
        settings.clock_skew_ms = static_cast<std::uint64_t>(options.clock_skew.count());
        settings.handshake_timeout = options.handshake_timeout;
        settings.max_message_bytes = options.max_message_bytes;
        settings.max_record_bytes = options.max_message_bytes + kFrameOverhead;
        settings.replay_window = options.replay_window;
        settings.replay_rate = options.replay_rate;
        const auto handle = next_handle++;
        auto session = std::make_shared<GatewaySession>(io, std::move(connection), handle, settings, replay_cache,
                                                        weak_from_this());
        sessions[handle] = session;
        counters.connections = sessions.size();
        session->start();
    }

    // A connection the transport ended before it became a session. A flood over the connection
    // limit is logged at most once a second, with the count of the ones not logged.
    void on_transport_refused(std::string_view reason, std::string_view peer, std::string_view detail) {
        counters.count_transport_refusal(reason);
        if (reason == "connection_limit") {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_limit_line < std::chrono::seconds(1)) {
                ++unlogged_limit_refusals;
                return;
            }
            last_limit_line = now;
            log(fmt::format("refused peer={} reason=connection_limit: {} connections open (limit {}){}", peer,
                            server ? server->connections() : 0, options.max_sessions + kHandshakeHeadroom,
                            unlogged_limit_refusals == 0
                                ? std::string()
                                : fmt::format(", {} more refused since the last line", unlogged_limit_refusals)));
            unlogged_limit_refusals = 0;
            return;
        }
        if (reason == "upgrade_timeout") {
            log(fmt::format("refused peer={} reason=upgrade_timeout: no WebSocket upgrade within {} ms", peer,
                            options.handshake_timeout.count()));
            return;
        }
        log(fmt::format("refused peer={} reason={}: {}", peer, reason,
                        detail.empty() ? "closed before the upgrade" : detail));
    }

    net::HttpResponse on_admin(const net::HttpRequest& request) {
        if (channels)
            if (auto answered = channels->answer(request)) return std::move(*answered);
        if (request.method != "GET") {
            net::HttpResponse refused{405, "text/plain; charset=utf-8", "only GET is supported here\n", "GET"};
            return refused;
        }
        const std::string_view path = request.path;
        if (path == "/healthz") return net::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/metrics") {
            update_inbox_gauge();
            return net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(counters)};
        }
        return net::HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
    }

    // Binds both ports; nothing is logged until both are bound, so a failure is one line.
    Result<void> listen() {
        net::ServerOptions server_options;
        server_options.listen = options.listen;
        server_options.tls_cert_file = options.tls_cert_file;
        server_options.tls_key_file = options.tls_key_file;
        server_options.limits.max_message_bytes = options.max_message_bytes + kFrameOverhead;
        server_options.max_connections = options.max_sessions + kHandshakeHeadroom;
        // The WebSocket upgrade gets the same time as the Aegis handshake after it.
        server_options.limits.handshake_timeout = options.handshake_timeout;
        std::weak_ptr<Core> weak = weak_from_this();
        server_options.on_refused = [weak](std::string_view reason, std::string_view peer, std::string_view detail) {
            if (auto self = weak.lock()) self->on_transport_refused(reason, peer, detail);
        };
        auto listening = net::Server::listen(io, server_options, [weak](std::shared_ptr<net::Connection> connection) {
            if (auto self = weak.lock())
                self->on_accept(std::move(connection));
            else
                connection->close();
        });
        // Each error names its address or file and carries its own exit code (usage, bad input, failure).
        if (!listening) return listening.take_error();
        server = std::move(listening.value());

        if (!options.admin.empty()) {
            auto admin_listening = net::AdminServer::listen(io, options.admin, [weak](const net::HttpRequest& request) {
                if (auto self = weak.lock()) return self->on_admin(request);
                return net::HttpResponse{503, "text/plain; charset=utf-8", "stopping\n", {}};
            });
            if (!admin_listening) {
                server->stop();
                auto error = admin_listening.take_error();
                error.message = fmt::format("admin endpoint: {}", error.message);
                return error;
            }
            admin = std::move(admin_listening.value());
        }
        return {};
    }

    void announce() {
        log(fmt::format("listening on {} ({}) as {}", with_port(options.listen, server->port()),
                        options.tls_cert_file.empty() ? "ws" : "wss", crypto::fingerprint(identity.public_key())));
        if (admin)
            log(fmt::format("admin endpoint on {} (/metrics, /healthz, /channels)",
                            with_port(options.admin, admin->port())));
        log_certificate();
    }

    void log_certificate() {
        if (own_certificate.empty()) return;
        if (const auto cert = identity::decode_certificate(own_certificate))
            log(fmt::format("presenting {} certificate serial {} id {} by CA {}, valid {}",
                            identity::to_string(cert->role), cert->serial, cert->id, crypto::fingerprint(cert->ca_key),
                            identity::format_validity(*cert)));
    }

    void adopt(AuthorizedKeys keys) {
        for (const auto& warning : keys.warnings) log(warning);
        authorized = std::move(keys);
    }

    // SIGHUP, whole or not at all: everything is read and checked first; a failure anywhere
    // leaves the authorized keys, revocation list, certificates and TLS pair in force as they
    // were, is logged once and counted (aegis_gateway_reload_failures_total).
    Result<void> reload() {
        auto applied = apply_reload();
        counters.last_reload_ok = applied.ok();
        if (!applied) {
            ++counters.reload_failures;
            log(
                fmt::format("reload failed, keeping the previous authorized keys, revocation list, TLS "
                            "certificate and channel controls: {}",
                            applied.error().message));
        }
        return applied;
    }

    Result<void> apply_reload() {
        // Read first: a controls file that does not parse stops the whole reload.
        auto controls = channels->read();
        if (!controls) return controls.take_error();
        auto loaded = load_authorized_keys(options.authorized_file);
        if (!loaded) return loaded.take_error();
        RevocationList revocations;
        if (!options.revoked_file.empty()) {
            auto read = load_revocation_list(options.revoked_file);
            if (!read) return read.take_error();
            revocations = std::move(read.value());
        }
        // The gateway's own certificate, renewed beside its key, is presented from now on.
        std::optional<Bytes> renewed_certificate;
        if (!options.identity_file.empty()) {
            auto renewed = identity::load_certificate_beside(options.identity_file, identity.public_key());
            if (!renewed) return renewed.take_error();
            renewed_certificate = std::move(renewed.value());
        }
        if (server) {
            if (auto tls = server->reload_tls(); !tls) return tls.take_error();
            if (!options.tls_cert_file.empty())
                log(fmt::format("reloaded TLS certificate {} and key {}", options.tls_cert_file, options.tls_key_file));
        }
        if (renewed_certificate && *renewed_certificate != own_certificate) {
            own_certificate = std::move(*renewed_certificate);
            log_certificate();
        }
        adopt(std::move(loaded.value()));
        revoked = std::move(revocations);
        if (!options.revoked_file.empty())
            log(fmt::format("reloaded {}: {} revoked keys and serials", options.revoked_file.string(), revoked.size()));
        log(fmt::format("reloaded {}: {} identities, {} certificate authorities", options.authorized_file.string(),
                        authorized.size(), authorized.authorities()));
        channels->adopt(std::move(controls.value()), "SIGHUP reload");
        log(fmt::format("reloaded {}: {} channel patterns disabled", channels->file().string(),
                        channels->controls().size()));
        // Copy: closing a session may change the map.
        std::vector<std::shared_ptr<GatewaySession>> open;
        for (const auto& [handle, session] : sessions)
            if (session->established()) open.push_back(session);
        for (const auto& session : open) {
            const auto& was = session->identity();
            // A session admitted by certificate is judged again by it (its CA may be gone).
            const auto certificate = was.certificate ? identity::encode_certificate(*was.certificate) : Bytes{};
            const auto now = authorize(was.key, certificate);
            if (!now || now->id != was.id || now->role != was.role) {
                log(fmt::format("revoked id={} fingerprint={}{}", was.id, crypto::fingerprint(was.key),
                                now ? "" : fmt::format(": {}", now.error().message)));
                session->close_with(protocol::Reason::revoked, "identity no longer authorized");
            } else if (!now->same_grant(was)) {
                session->update_identity(*now);
            }
        }
        return {};
    }

    void shutdown() {
        if (stopping) return;
        stopping = true;
        expiry_timer.cancel();
        lazy_timer.cancel();
        full_timer.cancel();
        flush();  // what was received is stored before the goodbye
        report_held_full(std::chrono::steady_clock::now() + full_lines.interval());  // every count held back
        log(fmt::format("shutting down: closing {} connections", sessions.size()));
        if (server) server->stop();
        if (admin) admin->stop();
        std::vector<std::shared_ptr<GatewaySession>> open;
        for (const auto& [handle, session] : sessions) open.push_back(session);
        for (const auto& session : open) session->close_with(protocol::Reason::shutting_down, "gateway shutting down");
    }
};

Gateway::Gateway(std::shared_ptr<Core> core) : core_(std::move(core)) {}

Gateway::~Gateway() {
    if (core_) core_->shutdown();
}

Result<std::unique_ptr<Gateway>> Gateway::start(boost::asio::io_context& io, const GatewayOptions& options,
                                                LogSink log) {
    if (auto valid = check_options(options); !valid) return valid.take_error();
    if (options.identity_file.empty()) return make_error(ExitCode::usage, "--identity KEY is required");
    auto identity = identity::load_secret_key(options.identity_file);
    if (!identity) return identity.take_error();
    // KEY-cert.pub beside the key is presented to brokers that trust the gateway by CA.
    auto certificate = identity::load_certificate_beside(options.identity_file, identity->key.public_key());
    if (!certificate) return certificate.take_error();
    return start(io, options, std::move(identity->key), std::move(log), std::move(certificate.value()));
}

Result<std::unique_ptr<Gateway>> Gateway::start(boost::asio::io_context& io, const GatewayOptions& options,
                                                crypto::SigningKey identity, LogSink log, Bytes certificate) {
    if (auto valid = check_options(options); !valid) return valid.take_error();
    auto authorized = load_authorized_keys(options.authorized_file);
    if (!authorized) return authorized.take_error();
    RevocationList revocations;
    if (!options.revoked_file.empty()) {
        auto read = load_revocation_list(options.revoked_file);
        if (!read) return read.take_error();
        revocations = std::move(read.value());
    }
    if (auto state = store::prepare_state_directory(options.state_dir); !state) return state.take_error();
    store::GatewayLimits limits;
    limits.max_messages = options.inbox_max_messages;
    limits.max_age_ms = static_cast<std::uint64_t>(options.inbox_max_age.count()) * 1000;
    auto stored = store::GatewayStore::open(options.state_dir / "gateway.db", limits);
    if (!stored) return stored.take_error();

    auto core = std::make_shared<Core>(io, options, std::move(identity), std::move(log), std::move(stored.value()));
    core->own_certificate = std::move(certificate);
    core->revoked = std::move(revocations);
    const auto controls_file =
        options.channel_controls_file.empty() ? options.state_dir / "channel-controls" : options.channel_controls_file;
    auto channels = ChannelAdmin::open(controls_file, core->counters, [weak = std::weak_ptr<Core>(core)](auto line) {
        if (auto self = weak.lock()) self->log(line);
    });
    if (!channels) return channels.take_error();
    core->channels.emplace(std::move(channels.value()));
    if (auto listening = core->listen(); !listening) return listening.take_error();
    core->adopt(std::move(authorized.value()));
    core->log(fmt::format("{} authorized identities and {} certificate authorities from {}", core->authorized.size(),
                          core->authorized.authorities(), options.authorized_file.string()));
    if (!core->channels->controls().empty()) {
        std::string listed;
        for (const auto& pattern : core->channels->controls().patterns())
            listed += (listed.empty() ? "" : " ") + pattern;
        core->log(fmt::format("channels disabled by {}: {}", controls_file.string(), listed));
    }
    core->expire();
    core->update_inbox_gauge();
    if (core->counters.inbox_messages > 0)
        core->log(fmt::format("{} stored messages waiting for {} identities", core->counters.inbox_messages,
                              core->stored->identities().size()));
    core->schedule_expiry();
    core->announce();
    return std::unique_ptr<Gateway>(new Gateway(std::move(core)));
}

Result<void> Gateway::reload() {
    return core_->reload();
}
void Gateway::shutdown() {
    core_->shutdown();
}
std::uint16_t Gateway::port() const {
    return core_->server ? core_->server->port() : 0;
}
std::uint16_t Gateway::admin_port() const {
    return core_->admin ? core_->admin->port() : 0;
}
const crypto::PublicKey& Gateway::public_key() const {
    return core_->identity.public_key();
}
const GatewayMetrics& Gateway::metrics() const {
    core_->update_inbox_gauge();
    return core_->counters;
}

namespace {

constexpr std::chrono::seconds kStatusInterval{5};

// Under systemd: the session count as a STATUS= line, refreshed while the gateway serves.
void report_status(boost::asio::steady_timer& timer, const Gateway& gateway) {
    const auto& counters = gateway.metrics();
    service::notify_status(fmt::format("serving on port {}: {} sessions, {} connections", gateway.port(),
                                       counters.sessions, counters.connections));
    timer.expires_after(kStatusInterval);
    timer.async_wait([&timer, &gateway](const boost::system::error_code& ec) {
        if (!ec) report_status(timer, gateway);
    });
}

// Waits for the next signal: SIGHUP reloads and waits again; SIGINT/SIGTERM shut down.
void await_signal(boost::asio::signal_set& signals, Gateway& gateway, const LogSink& log,
                  boost::asio::steady_timer& status_timer) {
    signals.async_wait([&signals, &gateway, &log, &status_timer](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            if (log) log("SIGHUP: re-reading the authorized file and the channel controls");
            (void)gateway.reload();  // a failure is logged and the previous keys stay
            await_signal(signals, gateway, log, status_timer);
            return;
        }
        if (log) log(fmt::format("{}: shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM"));
        status_timer.cancel();
        service::notify_stopping("shutting down");
        gateway.shutdown();
    });
}

}  // namespace

Result<void> run_gateway(const GatewayOptions& options, LogSink log) {
    boost::asio::io_context io;
    // Signals first, so a SIGHUP or SIGTERM during startup is not fatal by default action.
    boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    boost::asio::steady_timer status_timer(io);
    auto gateway = Gateway::start(io, options, log);
    if (!gateway) return gateway.take_error();
    // Listening (and the admin endpoint too, when asked): systemd may start what depends on us.
    service::notify_ready(fmt::format("serving on port {}: 0 sessions", gateway.value()->port()));
    if (service::notify_enabled()) report_status(status_timer, *gateway.value());
    await_signal(signals, *gateway.value(), log, status_timer);
    io.run();
    if (log) log("stopped");
    return {};
}

}  // namespace aegis::gateway
