#include "gateway/gateway.h"

#include <unistd.h>

#include <csignal>
#include <map>
#include <optional>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/gateway_session.h"
#include "gateway/session_host.h"
#include "identity/keyfile.h"
#include "net/websocket.h"
#include "protocol/reason.h"

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
    if (options.max_message_bytes < 1024) return make_error(ExitCode::usage, "--max-message-bytes must be at least 1024");
    if (options.handshake_timeout.count() <= 0) return make_error(ExitCode::usage, "--handshake-timeout must be positive");
    return {};
}

// Creates DIR 0700 when missing; it must end up a directory this process can write.
Result<void> prepare_state_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return make_error(ExitCode::bad_input, "cannot create state directory {}: {}", dir.string(), ec.message());
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
    if (!std::filesystem::is_directory(dir, ec))
        return make_error(ExitCode::bad_input, "state directory {} is not a directory", dir.string());
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return make_error(ExitCode::bad_input, "state directory {} is not writable", dir.string());
    return {};
}

// "HOST:PORT" with the port the socket really got (for --listen HOST:0).
std::string with_port(const std::string& host_port, std::uint16_t port) {
    return fmt::format("{}:{}", host_port.substr(0, host_port.rfind(':')), port);
}

}  // namespace

struct Gateway::Core final : SessionHost, std::enable_shared_from_this<Gateway::Core> {
    Core(boost::asio::io_context& io_context, GatewayOptions gateway_options, crypto::SigningKey key, LogSink sink)
        : io(io_context),
          options(std::move(gateway_options)),
          identity(std::move(key)),
          log_sink(std::move(sink)),
          replay_cache(2 * static_cast<std::uint64_t>(options.clock_skew.count())),
          routes(make_local_backplane()) {}

    boost::asio::io_context& io;
    GatewayOptions options;
    crypto::SigningKey identity;
    LogSink log_sink;
    protocol::ReplayCache replay_cache;
    std::unique_ptr<Backplane> routes;
    AuthorizedKeys authorized;
    GatewayMetrics counters;
    std::unique_ptr<net::Server> server;
    std::unique_ptr<net::AdminServer> admin;
    std::map<SessionHandle, std::shared_ptr<GatewaySession>> sessions;
    std::map<crypto::PublicKey, SessionHandle> session_of_key;
    SessionHandle next_handle = 1;
    bool stopping = false;

    // SessionHost
    Result<AuthorizedIdentity> admit(const crypto::PublicKey& key) override {
        if (stopping) return protocol::protocol_error(protocol::Reason::shutting_down);
        const auto* found = authorized.find(key);
        if (!found) return protocol::protocol_error(protocol::Reason::unknown_identity, "key not in the authorized file");
        const bool replaces = session_of_key.count(key) != 0;
        if (!replaces && counters.sessions >= options.max_sessions)
            return protocol::protocol_error(protocol::Reason::busy, fmt::format("{} sessions open", counters.sessions));
        return *found;
    }

    void established(const std::shared_ptr<GatewaySession>& session) override {
        const auto& who = session->identity();
        if (const auto old = session_of_key.find(who.key); old != session_of_key.end()) {
            if (const auto previous = sessions.find(old->second); previous != sessions.end())
                previous->second->close_with(protocol::Reason::none, "replaced by a newer session of this identity");
        }
        session_of_key[who.key] = session->handle();
        ++counters.sessions;
        ++counters.handshakes_ok;
        log(fmt::format("authenticated id={} role={} fingerprint={} peer={}", who.id, to_string(who.role),
                        crypto::fingerprint(who.key), session->peer()));
    }

    void closed(GatewaySession& session, std::string_view why) override {
        if (session.identity().id.empty()) {
            log(fmt::format("disconnect peer={} reason={}", session.peer(), why));
        } else {
            log(fmt::format("disconnect id={} peer={} reason={}", session.identity().id, session.peer(), why));
            const auto mine = session_of_key.find(session.identity().key);
            if (mine != session_of_key.end() && mine->second == session.handle()) session_of_key.erase(mine);
            if (counters.sessions > 0) --counters.sessions;
        }
        sessions.erase(session.handle());  // the caller holds its own reference while it returns
        counters.connections = sessions.size();
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
        settings.clock_skew_ms = static_cast<std::uint64_t>(options.clock_skew.count());
        settings.handshake_timeout = options.handshake_timeout;
        settings.max_message_bytes = options.max_message_bytes;
        const auto handle = next_handle++;
        auto session = std::make_shared<GatewaySession>(io, std::move(connection), handle, settings, replay_cache,
                                                        weak_from_this());
        sessions[handle] = session;
        counters.connections = sessions.size();
        log(fmt::format("connect from {}", session->peer()));
        session->start();
    }

    net::HttpResponse on_admin(std::string_view path) {
        if (path == "/healthz") return net::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/metrics")
            return net::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(counters)};
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
        std::weak_ptr<Core> weak = weak_from_this();
        auto listening = net::Server::listen(io, server_options, [weak](std::shared_ptr<net::Connection> connection) {
            if (auto self = weak.lock()) self->on_accept(std::move(connection));
            else connection->close();
        });
        if (!listening) {
            auto error = listening.take_error();
            return Error{ExitCode::failure, fmt::format("cannot listen on {}: {}", options.listen, error.message), 0};
        }
        server = std::move(listening.value());

        if (!options.admin.empty()) {
            auto admin_listening = net::AdminServer::listen(io, options.admin, [weak](std::string_view path) {
                if (auto self = weak.lock()) return self->on_admin(path);
                return net::HttpResponse{503, "text/plain; charset=utf-8", "stopping\n"};
            });
            if (!admin_listening) {
                server->stop();
                return Error{ExitCode::failure,
                             fmt::format("cannot listen on {} (admin): {}", options.admin, admin_listening.error().message), 0};
            }
            admin = std::move(admin_listening.value());
        }
        return {};
    }

    void announce() {
        log(fmt::format("listening on {} ({}) as {}", with_port(options.listen, server->port()),
                        options.tls_cert_file.empty() ? "ws" : "wss", crypto::fingerprint(identity.public_key())));
        if (admin) log(fmt::format("admin endpoint on {} (/metrics, /healthz)", with_port(options.admin, admin->port())));
    }

    void adopt(AuthorizedKeys keys) {
        for (const auto& warning : keys.warnings) log(warning);
        authorized = std::move(keys);
    }

    Result<void> reload() {
        auto loaded = load_authorized_keys(options.authorized_file);
        if (!loaded) {
            log(fmt::format("reload failed, keeping the previous authorized keys: {}", loaded.error().message));
            return loaded.take_error();
        }
        adopt(std::move(loaded.value()));
        log(fmt::format("reloaded {}: {} identities", options.authorized_file.string(), authorized.size()));
        // Copy: closing a session may change the map.
        std::vector<std::shared_ptr<GatewaySession>> open;
        for (const auto& [handle, session] : sessions)
            if (session->established()) open.push_back(session);
        for (const auto& session : open) {
            const auto& was = session->identity();
            const auto* now = authorized.find(was.key);
            if (!now || now->id != was.id || now->role != was.role) {
                log(fmt::format("revoked id={} fingerprint={}", was.id, crypto::fingerprint(was.key)));
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

Result<std::unique_ptr<Gateway>> Gateway::start(boost::asio::io_context& io, const GatewayOptions& options, LogSink log) {
    if (auto valid = check_options(options); !valid) return valid.take_error();
    if (options.identity_file.empty()) return make_error(ExitCode::usage, "--identity KEY is required");
    auto identity = identity::load_secret_key(options.identity_file);
    if (!identity) return identity.take_error();
    return start(io, options, std::move(identity->key), std::move(log));
}

Result<std::unique_ptr<Gateway>> Gateway::start(boost::asio::io_context& io, const GatewayOptions& options,
                                                crypto::SigningKey identity, LogSink log) {
    if (auto valid = check_options(options); !valid) return valid.take_error();
    auto authorized = load_authorized_keys(options.authorized_file);
    if (!authorized) return authorized.take_error();
    if (auto state = prepare_state_dir(options.state_dir); !state) return state.take_error();

    auto core = std::make_shared<Core>(io, options, std::move(identity), std::move(log));
    if (auto listening = core->listen(); !listening) return listening.take_error();
    core->adopt(std::move(authorized.value()));
    core->log(fmt::format("{} authorized identities from {}", core->authorized.size(), options.authorized_file.string()));
    core->announce();
    return std::unique_ptr<Gateway>(new Gateway(std::move(core)));
}

Result<void> Gateway::reload() { return core_->reload(); }
void Gateway::shutdown() { core_->shutdown(); }
std::uint16_t Gateway::port() const { return core_->server ? core_->server->port() : 0; }
std::uint16_t Gateway::admin_port() const { return core_->admin ? core_->admin->port() : 0; }
const crypto::PublicKey& Gateway::public_key() const { return core_->identity.public_key(); }
const GatewayMetrics& Gateway::metrics() const { return core_->counters; }

namespace {

// Waits for the next signal: SIGHUP reloads and waits again; SIGINT/SIGTERM shut down.
void await_signal(boost::asio::signal_set& signals, Gateway& gateway, const LogSink& log) {
    signals.async_wait([&signals, &gateway, &log](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            if (log) log("SIGHUP: re-reading the authorized file");
            (void)gateway.reload();  // a failure is logged and the previous keys stay
            await_signal(signals, gateway, log);
            return;
        }
        if (log) log(fmt::format("{}: shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM"));
        gateway.shutdown();
    });
}

}  // namespace

Result<void> run_gateway(const GatewayOptions& options, LogSink log) {
    boost::asio::io_context io;
    // Signals first, so a SIGHUP or SIGTERM during startup is not fatal by default action.
    boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    auto gateway = Gateway::start(io, options, log);
    if (!gateway) return gateway.take_error();
    await_signal(signals, *gateway.value(), log);
    io.run();
    if (log) log("stopped");
    return {};
}

}  // namespace aegis::gateway
