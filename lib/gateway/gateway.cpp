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
#include "core/service_notify.h"
#include "gateway/admin_endpoint.h"
#include "gateway/admission.h"
#include "gateway/applied_files.h"
#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/channel_admin.h"
#include "gateway/fleet_view.h"
#include "gateway/gateway_session.h"
#include "gateway/group_commit.h"
#include "gateway/listener.h"
#include "gateway/revocation_list.h"
#include "gateway/routing.h"
#include "gateway/session_host.h"
#include "identity/certificate.h"
#include "identity/keyfile.h"
#include "net/websocket.h"
#include "protocol/reason.h"
#include "store/private_files.h"
#include "store/redis/redis_gateway_store.h"
#include "store/sqlite_gateway_store.h"

namespace aegis::gateway {

namespace {

// Room for the record and frame headers around the largest batch we accept.
constexpr std::size_t kFrameOverhead = 4096;
// Connections still in their handshake beyond the session cap.
constexpr std::size_t kHandshakeHeadroom = 64;

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
    if (!options.redis.empty() && !options.redis_sentinel.empty())
        return make_error(ExitCode::usage, "--redis and --redis-sentinel exclude each other: give one");
    if (!options.redis_sentinel.empty() && options.redis_master.empty())
        return make_error(ExitCode::usage,
                          "--redis-sentinel needs --redis-master NAME, the master the sentinels monitor");
    if (!options.redis_master.empty() && options.redis_sentinel.empty())
        return make_error(ExitCode::usage, "--redis-master goes with --redis-sentinel");
    if (options.redis_db > 0 && options.redis_sentinel.empty())
        return make_error(ExitCode::usage, "--redis-db goes with --redis-sentinel (--redis gives it in its URL)");
    if (options.redis_wait_replicas > 0 && options.redis.empty() && options.redis_sentinel.empty())
        return make_error(ExitCode::usage, "--redis-wait-replicas goes with --redis or --redis-sentinel");
    if (!options.redis_sentinel.empty()) {
        if (auto sentinels = store::redis::parse_sentinels(options.redis_sentinel); !sentinels)
            return sentinels.take_error();
    }
    return {};
}

// The state store: STATE_DIR/gateway.db, or with --redis the Redis every gateway of a cluster shares.
Result<std::unique_ptr<store::GatewayState>> open_state(boost::asio::io_context& io, const GatewayOptions& options,
                                                        const LogSink& log) {
    store::GatewayLimits limits;
    limits.max_messages = options.inbox_max_messages;
    limits.max_age_ms = static_cast<std::uint64_t>(options.inbox_max_age.count()) * 1000;
    if (options.redis.empty() && options.redis_sentinel.empty()) {
        auto stored = store::SqliteGatewayStore::open(options.state_dir / "gateway.db", limits);
        if (!stored) return stored.take_error();
        // The device flushes a group commit while the loop reads and routes the next one.
        auto background = stored.value()->sync_in_background(
            [&io](std::function<void()> then) { boost::asio::post(io, std::move(then)); });
        if (!background) return background.take_error();
        return std::unique_ptr<store::GatewayState>(std::move(stored.value()));
    }
    store::redis::RedisStoreOptions redis{{}, limits};
    if (options.redis_sentinel.empty()) {
        auto endpoint = store::redis::parse_url(options.redis);
        if (!endpoint) return endpoint.take_error();
        redis.endpoint = *endpoint;
    } else {
        auto sentinels = store::redis::parse_sentinels(options.redis_sentinel);
        if (!sentinels) return sentinels.take_error();
        redis.sentinel = store::redis::SentinelOptions{*sentinels, options.redis_master};
        redis.endpoint.database = static_cast<unsigned>(options.redis_db);
    }
    redis.wait_replicas = options.redis_wait_replicas;
    redis.wait_timeout = std::chrono::milliseconds(options.redis_wait_timeout_ms);
    redis.log = [log](std::string_view line) {
        if (log) log(line);
    };
    auto stored = store::redis::RedisGatewayState::open(io, redis, [&log](std::string_view line) {
        if (log) log(line);
    });
    if (!stored) return stored.take_error();
    if (log) {
        const auto sentinels =
            options.redis_sentinel.empty()
                ? std::string()
                : fmt::format(", master {} of the sentinels {}", options.redis_master, options.redis_sentinel);
        log(fmt::format("state in Redis at {}{}, shared with the other gateways (this one: node {})",
                        store::redis::to_string(stored.value()->endpoint()), sentinels, stored.value()->node()));
    }
    return std::unique_ptr<store::GatewayState>(std::move(stored.value()));
}

// "HOST:PORT" with the port the socket really got (for --listen HOST:0).
std::string with_port(const std::string& host_port, std::uint16_t port) {
    return fmt::format("{}:{}", host_port.substr(0, host_port.rfind(':')), port);
}

}  // namespace

// Wires the parts: the listener (gateway/listener.h) and admin endpoint (gateway/admin_endpoint.h), admission (who is
// connected), routing (who receives a channel), the group commit (what is stored when) and the state store behind them.
struct Gateway::Core final : SessionHost, AdminView, std::enable_shared_from_this<Gateway::Core> {
    Core(boost::asio::io_context& io_context, GatewayOptions gateway_options, crypto::SigningKey key, LogSink sink,
         std::unique_ptr<store::GatewayState> state)
        : io(io_context),
          options(std::move(gateway_options)),
          identity(std::move(key)),
          log_sink(std::move(sink)),
          replay_cache(2 * static_cast<std::uint64_t>(options.clock_skew.count())),
          stored(std::move(state)),
          sessions(options.max_sessions, counters),
          wake(make_local_backplane(sessions)),
          routing(*stored, authorized) {}

    boost::asio::io_context& io;
    GatewayOptions options;
    crypto::SigningKey identity;
    Bytes own_certificate;   // of `identity`, sent to brokers that trust the gateway by CA; empty: none
    RevocationList revoked;  // --revoked: refused whatever the authorized file says
    LogSink log_sink;
    protocol::ReplayCache replay_cache;
    AuthorizedKeys authorized;
    GatewayMetrics counters;
    std::optional<ChannelAdmin> channel_admin;
    std::shared_ptr<Listener> server;
    std::unique_ptr<AdminEndpoint> admin;
    bool stopping = false;
    std::unique_ptr<store::GatewayState> stored;
    Admission sessions;
    std::unique_ptr<Backplane> wake;
    Routing routing;
    std::shared_ptr<GroupCommit> commits;

    // Made once the Core is owned by a shared_ptr: its log sink holds a weak one.
    void start_group_commit() {
        GroupCommitLimits limits;
        limits.inbox_max_age = options.inbox_max_age;
        limits.inbox_max_messages = options.inbox_max_messages;
        limits.drop_log_interval = options.drop_log_interval;
        commits = std::make_shared<GroupCommit>(io, *stored, routing, *wake, counters, limits,
                                                [weak = weak_from_this()](std::string_view line) {
                                                    if (auto self = weak.lock()) self->log(line);
                                                });
        commits->start();
    }

    // Asks the store: run when the gauge is read (a scrape, the log), not per commit.
    void update_inbox_gauge() { counters.inbox_messages = stored->totals().messages; }

    // SessionHost: storage
    void resume(const AuthorizedIdentity& who, const protocol::SessionToken& presented,
                std::function<void(Result<ResumeGrant>)> granted) override {
        std::weak_ptr<Core> weak = weak_from_this();
        stored->open_session(who.key, who.id, presented, unix_time_ms(),
                             [weak, key = who.key, granted = std::move(granted)](Result<store::OpenedSession> opened) {
                                 auto self = weak.lock();
                                 if (!self) return;
                                 if (!opened) return granted(opened.take_error());
                                 self->commits->token_changed();  // stored with a group commit soon
                                 ResumeGrant grant;
                                 grant.token = opened->token;
                                 grant.resumed = opened->resumed;
                                 // An ack of the previous session still waiting for the group commit counts too.
                                 grant.resume_point = std::max(opened->acknowledged, self->commits->waiting_ack(key));
                                 grant.patterns = std::move(opened->patterns);
                                 ++(grant.resumed ? self->counters.sessions_resumed : self->counters.sessions_fresh);
                                 granted(std::move(grant));
                             });
    }

    void publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                 Bytes batch, std::size_t messages, bool fsync, bool request) override {
        commits->publish(from, request_id, std::move(channel), std::move(batch), messages, fsync, request);
    }

    void acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) override {
        commits->acknowledge(key, sequence);
    }

    void subscriptions_changed(const AuthorizedIdentity& who, const std::vector<std::string>& patterns,
                               std::function<void(Result<void>)> done) override {
        std::weak_ptr<Core> weak = weak_from_this();
        stored->save_subscriptions(
            who.key, who.id, patterns, [weak, id = who.id, done = std::move(done)](Result<void> saved) {
                auto self = weak.lock();
                if (!saved && self) {
                    ++self->counters.store_failures;
                    self->log(fmt::format("cannot store the subscriptions of id={}: {}", id, saved.error().message));
                }
                done(std::move(saved));
            });
    }

    void inbox(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
               store::Completion<std::vector<store::StoredBatch>> done) override {
        stored->read_after(key, after, limit, std::move(done));
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

    Result<AuthorizedIdentity> judge(const crypto::PublicKey& key, ByteView certificate) override {
        if (stopping) return protocol::protocol_error(protocol::Reason::shutting_down);
        return authorize(key, certificate);
    }

    Result<AuthorizedIdentity> admit(const crypto::PublicKey& key, ByteView certificate) override {
        auto found = judge(key, certificate);
        if (!found) return found.take_error();
        if (auto room = sessions.admit(key); !room) return room.take_error();
        return found;
    }

    void established(const std::shared_ptr<GatewaySession>& session) override {
        wake->session_replaced(session->identity().key, session->handle());
        sessions.established(session);
    }

    void closed(GatewaySession& session, std::string_view why) override {
        if (session.identity().id.empty()) {
            log(fmt::format("disconnect peer={} reason={}", session.peer(), why));
        } else {
            log(fmt::format("disconnect id={} peer={} reason={}", session.identity().id, session.peer(), why));
        }
        if (sessions.closed(session)) {
            // Token expiry counts from the last disconnect.
            stored->session_closed(session.identity().key, session.identity().id, session.token(), unix_time_ms());
            commits->token_changed();
        }
    }

    const std::string* disabled_by(std::string_view channel) const override {
        return channel_admin ? channel_admin->disabled_by(channel) : nullptr;
    }
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
        settings.verify_signatures = options.verify_signatures;
        settings.max_record_bytes = options.max_message_bytes + kFrameOverhead;
        settings.replay_window = options.replay_window;
        settings.replay_rate = options.replay_rate;
        auto session = std::make_shared<GatewaySession>(io, std::move(connection), sessions.next_handle(), settings,
                                                        replay_cache, weak_from_this());
        sessions.accepted(session);
        session->start();
    }

    // AdminView: what the admin endpoint shows, asked at each request.
    std::optional<net::HttpResponse> channels(const net::HttpRequest& request) override {
        if (!channel_admin) return std::nullopt;
        return channel_admin->answer(request);
    }

    std::string sessions_json() override {
        return render_sessions(authorized, sessions.connections(), stored->identities(), unix_time_ms());
    }

    std::string prometheus_text() override {
        update_inbox_gauge();
        update_certificate_gauges();
        return render_prometheus(counters);
    }

    // Ready: serving, not shutting down, the store answers a read now and its last commit succeeded.
    std::optional<std::string> not_ready() override {
        if (stopping) return "shutting down";
        if (!counters.last_commit_ok) return "the last commit of the state file failed";
        // Shared, not on this stack: a networked store may answer after this request is done.
        auto answer = std::make_shared<std::optional<Result<void>>>();
        stored->probe([answer](Result<void> probed) { *answer = std::move(probed); });
        if (!*answer) return "the state store did not answer at once";
        if (!**answer) return "the state store does not answer: " + (*answer)->error().message;
        return std::nullopt;
    }

    // Binds both ports; nothing is logged until both are bound, so a failure is one line.
    Result<void> listen() {
        ListenerOptions listener_options;
        listener_options.listen = options.listen;
        listener_options.tls_cert_file = options.tls_cert_file;
        listener_options.tls_key_file = options.tls_key_file;
        listener_options.max_message_bytes = options.max_message_bytes + kFrameOverhead;
        listener_options.max_connections = options.max_sessions + kHandshakeHeadroom;
        // The WebSocket upgrade gets the same time as the Aegis handshake after it.
        listener_options.handshake_timeout = options.handshake_timeout;
        std::weak_ptr<Core> weak = weak_from_this();
        auto listening = Listener::open(
            io, listener_options, counters,
            [weak](std::string_view line) {
                if (auto self = weak.lock()) self->log(line);
            },
            [weak](std::shared_ptr<net::Connection> connection) {
                if (auto self = weak.lock())
                    self->on_accept(std::move(connection));
                else
                    connection->close();
            });
        if (!listening) return listening.take_error();
        server = std::move(listening.value());

        if (!options.admin.empty()) {
            auto admin_listening = AdminEndpoint::listen(io, options.admin, weak);
            if (!admin_listening) {
                server->stop();
                return admin_listening.take_error();
            }
            admin = std::move(admin_listening.value());
        }
        return {};
    }

    void announce() {
        log(fmt::format("listening on {} ({}) as {}", with_port(options.listen, server->port()),
                        options.tls_cert_file.empty() ? "ws" : "wss", crypto::fingerprint(identity.public_key())));
        if (admin)
            log(fmt::format("admin endpoint on {} (/metrics, /healthz, /readyz, /sessions, /channels)",
                            with_port(options.admin, admin->port())));
        log_certificate();
    }

    void update_certificate_gauges() {
        counters.own_certificate_valid_before.reset();
        if (!own_certificate.empty()) {
            if (const auto cert = identity::decode_certificate(own_certificate);
                cert && cert->valid_before != identity::kForever)
                counters.own_certificate_valid_before = cert->valid_before;
        }
        const auto now_s = unix_time_ms() / 1000;
        constexpr std::uint64_t kDay = 24 * 3600;
        const std::uint64_t windows[] = {kDay, 7 * kDay, 30 * kDay};
        for (auto& count : counters.session_certificates_expiring) count = 0;
        for (const auto& session : sessions.connections()) {
            if (!session->established() || !session->identity().certificate) continue;
            const auto ends = session->identity().certificate->valid_before;
            for (int i = 0; i < 3; ++i)
                if (ends != identity::kForever && ends <= now_s + windows[i])
                    ++counters.session_certificates_expiring[i];
        }
    }

    void log_certificate() {
        if (own_certificate.empty()) return;
        if (const auto cert = identity::decode_certificate(own_certificate))
            log(fmt::format("presenting {} certificate serial {} id {} by CA {}, valid {}",
                            identity::to_string(cert->role), cert->serial, cert->id, crypto::fingerprint(cert->ca_key),
                            identity::format_validity(*cert)));
    }

    // What is applied, kept for --check-config; failing that only costs its report of changes.
    void record(const AuthorizedKeys& keys, const RevocationList& revocations) {
        if (auto recorded = record_applied(options.state_dir, keys, revocations); !recorded)
            log(fmt::format("{}; aegis-gateway --check-config cannot tell what a reload would change",
                            recorded.error().message));
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
        auto controls = channel_admin->read();
        if (!controls) return controls.take_error();
        auto access = load_access_files(options.authorized_file, options.revoked_file);
        if (!access) return access.take_error();
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
        record(access->keys, access->revoked);
        adopt(std::move(access->keys));
        revoked = std::move(access->revoked);
        if (!options.revoked_file.empty())
            log(fmt::format("reloaded {}: {} revoked keys and serials", options.revoked_file.string(), revoked.size()));
        log(fmt::format("reloaded {}: {} identities, {} certificate authorities", options.authorized_file.string(),
                        authorized.size(), authorized.authorities()));
        channel_admin->adopt(std::move(controls.value()), "SIGHUP reload");
        log(fmt::format("reloaded {}: {} channel patterns disabled", channel_admin->file().string(),
                        channel_admin->controls().size()));
        for (const auto& session : sessions.connections()) {
            if (!session->established()) continue;
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
        commits->stop();  // what was received is stored before the goodbye
        stored->close();  // once what it was asked is answered
        const auto open = sessions.connections();
        log(fmt::format("shutting down: closing {} connections", open.size()));
        if (server) server->stop();
        if (admin) admin->stop();
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
    auto access = load_access_files(options.authorized_file, options.revoked_file);
    if (!access) return access.take_error();
    if (auto state = store::prepare_state_directory(options.state_dir); !state) return state.take_error();
    auto stored = open_state(io, options, log);
    if (!stored) return stored.take_error();

    auto core = std::make_shared<Core>(io, options, std::move(identity), std::move(log), std::move(stored.value()));
    // Other gateways sharing the store wake this one's sessions and replace them (Backplane).
    core->stored->watch({[weak = std::weak_ptr<Core>(core)](const crypto::PublicKey& key) {
                             if (auto self = weak.lock()) self->wake->inbox_grew(key);
                         },
                         [weak = std::weak_ptr<Core>(core)](const crypto::PublicKey& key) {
                             if (auto self = weak.lock()) self->wake->session_replaced(key, 0);
                         },
                         [weak = std::weak_ptr<Core>(core)](const std::string& node) {
                             auto self = weak.lock();
                             if (!self) return;
                             self->log(
                                 fmt::format("gateway {} reloaded: re-reading the authorized file and the "
                                             "channel controls",
                                             node));
                             (void)self->reload();  // a failure is logged and the previous keys stay
                         }});
    core->own_certificate = std::move(certificate);
    core->revoked = std::move(access->revoked);
    const auto controls_file =
        options.channel_controls_file.empty() ? options.state_dir / "channel-controls" : options.channel_controls_file;
    auto channels = ChannelAdmin::open(controls_file, core->counters, [weak = std::weak_ptr<Core>(core)](auto line) {
        if (auto self = weak.lock()) self->log(line);
    });
    if (!channels) return channels.take_error();
    core->channel_admin.emplace(std::move(channels.value()));
    if (auto listening = core->listen(); !listening) return listening.take_error();
    core->record(access->keys, core->revoked);
    core->adopt(std::move(access->keys));
    core->log(fmt::format("{} authorized identities and {} certificate authorities from {}", core->authorized.size(),
                          core->authorized.authorities(), options.authorized_file.string()));
    if (!core->channel_admin->controls().empty()) {
        std::string listed;
        for (const auto& pattern : core->channel_admin->controls().patterns())
            listed += (listed.empty() ? "" : " ") + pattern;
        core->log(fmt::format("channels disabled by {}: {}", controls_file.string(), listed));
    }
    core->start_group_commit();  // prunes what expired while the gateway was down
    if (const auto waiting = core->stored->totals(); waiting.messages > 0)
        core->log(fmt::format("{} stored messages waiting for {} identities", waiting.messages, waiting.identities));
    core->update_inbox_gauge();
    core->announce();
    return std::unique_ptr<Gateway>(new Gateway(std::move(core)));
}

Result<void> Gateway::reload() {
    auto reloaded = core_->reload();
    // Every gateway sharing the store reads its own files again, so a revocation applies everywhere.
    if (reloaded) core_->stored->announce_reload();
    return reloaded;
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
