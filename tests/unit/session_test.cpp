// The gateway and the client session together over real loopback WebSockets: one io_context,
// keys made in memory, every wait bounded.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/primitives.h"
#include "gateway/gateway.h"
#include "net/websocket.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/reason.h"
#include "protocol/record.h"
#include "session/client_session.h"
#include "store/sqlite.h"

namespace {

using namespace std::chrono_literals;
using aegis::Bytes;
using aegis::Error;
using aegis::crypto::SigningKey;
using aegis::protocol::Reason;
using aegis::session::State;

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

SigningKey clone(const SigningKey& key) {
    return SigningKey::from_seed(key.seed().view());
}

std::string public_line(const SigningKey& key) {
    return "aegis-ed25519 " + aegis::crypto::base64_encode(key.public_key());
}

aegis::protocol::SignedBatch make_batch(const SigningKey& key, const std::string& origin_id, const std::string& channel,
                                        const std::string& payload) {
    aegis::protocol::Envelope message;
    message.id = aegis::protocol::new_message_id(1731000000000);
    message.channel = channel;
    message.origin = key.public_key();
    message.origin_id = origin_id;
    message.sequence = 1;
    message.timestamp_ms = now_ms();
    message.payload.assign(payload.begin(), payload.end());
    auto signed_batch = aegis::protocol::sign_batch({message}, key);
    REQUIRE(signed_batch.ok());
    return std::move(signed_batch.value());
}

std::string payload_of(const aegis::protocol::SignedBatch& batch) {
    return std::string(aegis::as_text(batch.messages.at(0).payload));
}

// One broker's view: a ClientSession and everything its events reported.
struct Client {
    std::vector<State> states;
    std::optional<Error> last_cause;
    int authenticated = 0;
    std::vector<std::pair<std::uint64_t, aegis::protocol::SignedBatch>> delivered;
    int refuse_deliveries = 0;  // this many deliveries are answered with an error (not taken)
    std::vector<std::uint64_t> refused_sequences;
    std::map<std::uint32_t, aegis::Result<void>> publish_results;
    std::vector<std::pair<std::uint32_t, aegis::Result<void>>> subscribe_results;
    std::unique_ptr<aegis::session::ClientSession> session;

    Client(boost::asio::io_context& io, aegis::session::ClientSessionOptions options) {
        aegis::session::SessionEvents events;
        events.on_state = [this](State state, const Error* cause) {
            states.push_back(state);
            if (cause) last_cause = *cause;
        };
        events.on_authenticated = [this](const aegis::protocol::Accepted&, const aegis::crypto::PublicKey&) {
            ++authenticated;
        };
        events.on_deliver = [this](std::uint64_t sequence, aegis::protocol::SignedBatch batch) -> aegis::Result<void> {
            if (refuse_deliveries > 0) {
                --refuse_deliveries;
                refused_sequences.push_back(sequence);
                return aegis::make_error(aegis::ExitCode::failure, "cannot store: disk full");
            }
            delivered.emplace_back(sequence, std::move(batch));
            return {};
        };
        events.on_publish_result = [this](std::uint32_t id, aegis::Result<void> outcome) {
            publish_results.insert_or_assign(id, std::move(outcome));
        };
        events.on_subscribe_result = [this](std::uint32_t id, aegis::Result<void> outcome) {
            subscribe_results.emplace_back(id, std::move(outcome));
        };
        session = std::make_unique<aegis::session::ClientSession>(io, std::move(options), std::move(events));
        session->start();
    }

    [[nodiscard]] State state() const { return session->stats().state; }
    [[nodiscard]] Reason cause() const { return last_cause ? aegis::protocol::reason_of(*last_cause) : Reason::none; }
    [[nodiscard]] bool subscribed(std::uint32_t id) const {
        for (const auto& [got, outcome] : subscribe_results)
            if (got == id && outcome.ok()) return true;
        return false;
    }
};

// A client that speaks the protocol by hand, to send what a ClientSession never would.
struct RawClient {
    std::shared_ptr<aegis::net::Connection> connection;
    std::optional<aegis::protocol::ClientHandshake> handshake;
    std::optional<aegis::protocol::RecordLayer> records;
    bool hello_answered = false;
    bool closed = false;
    std::vector<aegis::protocol::Frame> frames;
    std::shared_ptr<RawClient*> alive = std::make_shared<RawClient*>(this);

    RawClient(boost::asio::io_context& io, const aegis::net::Url& url, const SigningKey& key,
              const aegis::crypto::PublicKey& server_key) {
        aegis::protocol::ClientOptions options;
        options.identity = &key;
        options.pinned_server_keys = {server_key};
        options.server_name = url.server_name;
        handshake.emplace(std::move(options));
        std::weak_ptr<RawClient*> weak = alive;
        aegis::net::connect(io, url, aegis::net::ClientOptions{},
                            [weak](aegis::Result<std::shared_ptr<aegis::net::Connection>> made) {
                                REQUIRE(made.ok());
                                auto self = weak.lock();
                                if (!self) return;
                                RawClient& me = **self;
                                me.connection = std::move(made.value());
                                me.connection->start(
                                    [weak](Bytes message) {
                                        if (auto live = weak.lock()) (*live)->on_message(std::move(message));
                                    },
                                    [weak](const Error&) {
                                        if (auto live = weak.lock()) (*live)->closed = true;
                                    });
                                REQUIRE(me.connection->send(me.handshake->start(now_ms())));
                            });
    }

    ~RawClient() {
        alive.reset();  // later transport events find nobody home
        if (connection) connection->close();
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    void on_message(Bytes message) {
        if (records) {
            auto plaintext = records->open(message);
            REQUIRE(plaintext.ok());
            auto frame = aegis::protocol::decode_frame(plaintext.value());
            REQUIRE(frame.ok());
            frames.push_back(std::move(frame.value()));
        } else if (!hello_answered) {
            auto auth = handshake->on_server_hello(message);
            REQUIRE(auth.ok());
            hello_answered = true;
            REQUIRE(connection->send(std::move(auth.value())));
        } else {
            auto grant = handshake->on_server_finish(message);
            REQUIRE(grant.ok());
            records.emplace(handshake->take_keys(), aegis::protocol::RekeyPolicy{}, now_ms());
        }
    }

    void send_plaintext(const Bytes& plaintext) { REQUIRE(connection->send(records->seal(plaintext, now_ms()))); }
    void send_frame(const aegis::protocol::Frame& frame) { send_plaintext(aegis::protocol::encode_frame(frame)); }
    [[nodiscard]] const aegis::protocol::Frame* answer_to(std::uint32_t request_id) const {
        for (const auto& frame : frames)
            if (frame.request_id == request_id && frame.type != aegis::protocol::FrameType::deliver) return &frame;
        return nullptr;
    }
    [[nodiscard]] std::vector<const aegis::protocol::Frame*> answers_to(std::uint32_t request_id) const {
        std::vector<const aegis::protocol::Frame*> out;
        for (const auto& frame : frames)
            if (frame.request_id == request_id && frame.type != aegis::protocol::FrameType::deliver)
                out.push_back(&frame);
        return out;
    }
};

struct Harness {
    struct Limits {
        std::size_t max_sessions = 10'000;
        std::size_t max_message_bytes = 16 * 1024 * 1024;
        std::uint64_t inbox_max_messages = 100'000;
        std::size_t replay_window = 64;
        std::uint32_t replay_rate = 0;
        std::chrono::seconds inbox_max_age{3600};
        std::chrono::milliseconds drop_log_interval{60'000};
        bool verify_signatures = false;
    };

    boost::asio::io_context io;
    std::filesystem::path dir;
    SigningKey gateway_key = SigningKey::generate();
    SigningKey agent_key = SigningKey::generate();
    SigningKey backend_key = SigningKey::generate();
    SigningKey stranger_key = SigningKey::generate();
    std::vector<std::string> log;
    std::unique_ptr<aegis::gateway::Gateway> gateway;
    std::uint16_t port = 0;
    Limits limits;

    Harness() : Harness(Limits{}) {}
    explicit Harness(Limits gateway_limits) : limits(gateway_limits) {
        dir = std::filesystem::temp_directory_path() /
              ("aegis-session-test-" + aegis::crypto::hex_encode(SigningKey::generate().public_key()).substr(0, 12));
        std::filesystem::create_directories(dir);
        write_authorized(true);
        start_gateway(0);
    }

    ~Harness() {
        clients.clear();
        stop_gateway();
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    void write_authorized(bool with_agent) {
        std::ofstream out(dir / "authorized", std::ios::trunc);
        out << "# test fleet\n";
        if (with_agent) out << "role=agent,id=host42 " << public_line(agent_key) << " agent\n";
        out << "role=backend,id=soc " << public_line(backend_key) << " backend\n";
    }

    void start_gateway(std::uint16_t on_port) {
        aegis::gateway::GatewayOptions options;
        options.listen = "127.0.0.1:" + std::to_string(on_port);
        options.authorized_file = dir / "authorized";
        options.state_dir = dir / "state";
        options.handshake_timeout = 1500ms;
        options.max_sessions = limits.max_sessions;
        options.max_message_bytes = limits.max_message_bytes;
        options.inbox_max_messages = limits.inbox_max_messages;
        options.replay_window = limits.replay_window;
        options.replay_rate = limits.replay_rate;
        options.inbox_max_age = limits.inbox_max_age;
        options.drop_log_interval = limits.drop_log_interval;
        options.verify_signatures = limits.verify_signatures;
        auto started = aegis::gateway::Gateway::start(io, options, clone(gateway_key),
                                                      [this](std::string_view line) { log.emplace_back(line); });
        REQUIRE(started.ok());
        gateway = std::move(started.value());
        port = gateway->port();
        REQUIRE(port != 0);
    }

    void stop_gateway() {
        if (!gateway) return;
        gateway->shutdown();
        run_for(200ms);  // let the goodbyes and closes go out
        gateway.reset();
    }

    // Runs the io_context until `done` holds or the time is up; says which.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            io.run_for(10ms);
            if (io.stopped()) io.restart();
        }
        return true;
    }

    void run_for(std::chrono::milliseconds span) {
        (void)run_until([] { return false; }, span);
    }

    aegis::net::Url url() const {
        auto parsed = aegis::net::parse_url("ws://127.0.0.1:" + std::to_string(port) + "/");
        REQUIRE(parsed.ok());
        return parsed.value();
    }

    aegis::session::ClientSessionOptions options_for(const SigningKey& key) const {
        aegis::session::ClientSessionOptions options;
        options.url = url();
        options.identity = &key;
        options.pinned_server_keys = {gateway_key.public_key()};
        options.backoff_min = 50ms;
        options.backoff_max = 300ms;
        options.handshake_timeout = 3000ms;
        options.heartbeat_interval = 0ms;
        return options;
    }

    Client& client(const SigningKey& key) { return client(options_for(key)); }
    Client& client(aegis::session::ClientSessionOptions options) {
        clients.push_back(std::make_unique<Client>(io, std::move(options)));
        return *clients.back();
    }

    bool logged(const std::string& part) const { return count_logged(part) > 0; }
    [[nodiscard]] std::size_t count_logged(const std::string& part) const {
        return static_cast<std::size_t>(std::count_if(
            log.begin(), log.end(), [&](const std::string& line) { return line.find(part) != std::string::npos; }));
    }

    std::vector<std::unique_ptr<Client>> clients;
};

}  // namespace

TEST_CASE("agent and backend exchange signed batches through the gateway", "[session]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    REQUIRE(agent.session->grant() != nullptr);
    CHECK(agent.session->grant()->assigned_id == "host42");
    CHECK(agent.session->grant()->role == aegis::Role::agent);
    CHECK(backend.session->grant()->assigned_id == "soc");
    CHECK(backend.session->grant()->role == aegis::Role::backend);
    CHECK(h.gateway->metrics().sessions == 2);
    CHECK(h.gateway->metrics().handshakes_ok == 2);
    CHECK(h.logged("authenticated id=host42 role=agent fingerprint=" +
                   aegis::crypto::fingerprint(h.agent_key.public_key())));

    backend.session->set_subscriptions(7, {"agent.host42.>"});
    agent.session->set_subscriptions(8, {"backend.host42.>", "backend.all.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(7) && agent.subscribed(8); }));

    REQUIRE(agent.session->publish(1, make_batch(h.agent_key, "host42", "agent.host42.anomalies", "cpu spike")));
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 1 && agent.publish_results.count(1) == 1; }));
    CHECK(agent.publish_results.at(1).ok());
    const auto& [sequence, batch] = backend.delivered.at(0);
    CHECK(sequence == 1);
    CHECK(batch.messages.at(0).origin == h.agent_key.public_key());
    CHECK(batch.messages.at(0).origin_id == "host42");
    CHECK(batch.messages.at(0).channel == "agent.host42.anomalies");
    CHECK(payload_of(batch) == "cpu spike");
    CHECK(aegis::protocol::verify_batch(batch).ok());

    REQUIRE(backend.session->publish(2, make_batch(h.backend_key, "soc", "backend.host42.policies", "deny all")));
    REQUIRE(h.run_until([&] { return agent.delivered.size() == 1 && backend.publish_results.count(2) == 1; }));
    CHECK(backend.publish_results.at(2).ok());
    CHECK(agent.delivered.at(0).second.messages.at(0).origin == h.backend_key.public_key());
    CHECK(payload_of(agent.delivered.at(0).second) == "deny all");

    // A second message keeps the per-session sequence increasing; the publisher never gets its own.
    REQUIRE(agent.session->publish(3, make_batch(h.agent_key, "host42", "agent.host42.status", "ok")));
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 2; }));
    CHECK(backend.delivered.at(1).first == 2);
    h.run_for(100ms);
    CHECK(agent.delivered.size() == 1);
    CHECK(h.gateway->metrics().messages_in == 3);
    CHECK(h.gateway->metrics().messages_out == 3);
    CHECK(h.gateway->metrics().bytes_in > 0);
    CHECK(agent.session->stats().messages_out == 2);
    CHECK(backend.session->stats().messages_in == 2);
}

TEST_CASE("an unknown key is refused with unknown_identity and asked about again at the maximum backoff", "[session]") {
    Harness h;
    auto& stranger = h.client(h.stranger_key);
    REQUIRE(h.run_until([&] { return stranger.state() == State::refused; }));
    CHECK(stranger.cause() == Reason::unknown_identity);
    CHECK(stranger.last_cause->exit == aegis::ExitCode::refused);
    CHECK(stranger.authenticated == 0);
    CHECK(h.gateway->metrics().handshake_failures("unknown_identity") == 1);
    CHECK(h.gateway->metrics().refusal_count("unknown_identity") == 1);
    CHECK(h.logged("refused peer=127.0.0.1:"));
    // Not before half the maximum backoff (150 ms), and again within the maximum (300 ms).
    h.run_for(100ms);
    CHECK(h.gateway->metrics().handshake_failures("unknown_identity") == 1);
    REQUIRE(h.run_until([&] { return h.gateway->metrics().handshake_failures("unknown_identity") >= 3; }, 2000ms));
    // It stays refused through the attempts: never "connecting" in between.
    CHECK(stranger.state() == State::refused);
    CHECK(std::count(stranger.states.begin(), stranger.states.end(), State::connecting) == 1);
}

TEST_CASE("a delivery the handler cannot take is not acknowledged and comes again", "[session][durable]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(1); }));
    backend.refuse_deliveries = 2;

    REQUIRE(agent.session->publish(2, make_batch(h.agent_key, "host42", "agent.host42.logs", "one")));
    REQUIRE(agent.session->publish(3, make_batch(h.agent_key, "host42", "agent.host42.logs", "two")));
    // Refused twice (each ending the connection with the handler's error), then taken, in order.
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 2; }, 8000ms));
    CHECK(backend.refused_sequences == std::vector<std::uint64_t>{1, 1});
    CHECK(payload_of(backend.delivered.at(0).second) == "one");
    CHECK(payload_of(backend.delivered.at(1).second) == "two");
    CHECK(backend.delivered.at(0).first == 1);
    CHECK(std::count(backend.states.begin(), backend.states.end(), State::backing_off) == 2);
    REQUIRE(backend.last_cause.has_value());
    CHECK(backend.last_cause->message == "cannot store: disk full");
    REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 0; }));
    h.run_for(200ms);
    CHECK(backend.delivered.size() == 2);  // acknowledged once taken: not delivered a third time
}

TEST_CASE("a wrong pinned gateway key stops before the client reveals itself", "[session]") {
    Harness h;
    auto options = h.options_for(h.agent_key);
    options.pinned_server_keys = {SigningKey::generate().public_key()};
    auto& agent = h.client(std::move(options));
    REQUIRE(h.run_until([&] { return agent.state() == State::stopped; }));
    CHECK(agent.cause() == Reason::server_key_mismatch);
    // The gateway saw a hello, then the peer left: never a ClientAuth, so no identity decision.
    REQUIRE(h.run_until([&] { return h.gateway->metrics().handshake_failures("peer_closed") == 1; }));
    CHECK(h.gateway->metrics().handshakes_ok == 0);
    CHECK(h.gateway->metrics().handshake_failures("unknown_identity") == 0);
    CHECK_FALSE(h.logged("authenticated"));
}

TEST_CASE("trust on first use: refusing the offered key stops with server_key_mismatch", "[session]") {
    Harness h;
    auto options = h.options_for(h.agent_key);
    options.pinned_server_keys.clear();
    std::optional<aegis::crypto::PublicKey> offered;
    aegis::session::SessionEvents events;
    std::optional<Error> cause;
    events.on_server_key = [&](const aegis::crypto::PublicKey& key) {
        offered = key;
        return false;
    };
    events.on_state = [&](State, const Error* why) {
        if (why) cause = *why;
    };
    aegis::session::ClientSession session(h.io, std::move(options), std::move(events));
    session.start();
    REQUIRE(h.run_until([&] { return session.stats().state == State::stopped; }));
    REQUIRE(offered.has_value());
    CHECK(*offered == h.gateway_key.public_key());
    REQUIRE(cause.has_value());
    CHECK(aegis::protocol::reason_of(*cause) == Reason::server_key_mismatch);
}

TEST_CASE("channel access control answers with access_denied", "[session]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected; }));

    REQUIRE(agent.session->publish(11, make_batch(h.agent_key, "host42", "agent.other.x", "spoof")));
    agent.session->set_subscriptions(12, {"agent.>"});
    REQUIRE(h.run_until([&] { return agent.publish_results.count(11) == 1 && agent.subscribe_results.size() == 1; }));
    const auto& published = agent.publish_results.at(11);
    REQUIRE_FALSE(published.ok());
    CHECK(aegis::protocol::reason_of(published.error()) == Reason::access_denied);
    CHECK(published.error().message.find("agent.other.x") != std::string::npos);
    const auto& subscribed = agent.subscribe_results.at(0);
    CHECK(subscribed.first == 12);
    REQUIRE_FALSE(subscribed.second.ok());
    CHECK(aegis::protocol::reason_of(subscribed.second.error()) == Reason::access_denied);
    CHECK(subscribed.second.error().message.find("agent.>") != std::string::npos);

    // A batch signed by this key but claiming another id is refused too.
    REQUIRE(agent.session->publish(13, make_batch(h.agent_key, "host7", "agent.host42.x", "wrong id")));
    REQUIRE(h.run_until([&] { return agent.publish_results.count(13) == 1; }));
    CHECK(aegis::protocol::reason_of(agent.publish_results.at(13).error()) == Reason::access_denied);
    CHECK(h.gateway->metrics().refusal_count("access_denied") == 3);
    CHECK(agent.state() == State::connected);
}

TEST_CASE("a restarted gateway gets the session back by itself", "[session]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(21, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(21); }));

    const auto port = h.port;
    h.gateway->shutdown();
    REQUIRE(h.run_until([&] { return agent.state() == State::backing_off && backend.state() == State::backing_off; }));
    CHECK(agent.cause() == Reason::shutting_down);
    h.gateway.reset();
    h.run_for(300ms);  // attempts against a closed port fail and back off again
    CHECK(agent.state() != State::stopped);

    h.start_gateway(port);
    REQUIRE(h.run_until([&] { return agent.authenticated == 2 && backend.authenticated == 2; }, 8000ms));
    // The subscription set is sent again after the reconnect.
    REQUIRE(h.run_until(
        [&] { return backend.subscribe_results.size() == 2 && backend.subscribe_results.at(1).second.ok(); }));
    REQUIRE(agent.session->publish(22, make_batch(h.agent_key, "host42", "agent.host42.logs", "back again")));
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 1; }));
    CHECK(payload_of(backend.delivered.at(0).second) == "back again");
    CHECK(agent.session->stats().reconnects == 1);
}

TEST_CASE("reload revokes a removed identity and refuses its reconnect", "[session]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));

    h.write_authorized(false);
    REQUIRE(h.gateway->reload().ok());
    REQUIRE(h.run_until([&] { return agent.state() == State::refused; }));
    CHECK(agent.cause() == Reason::revoked);
    CHECK(h.logged("revoked id=host42"));
    h.run_for(100ms);
    CHECK(backend.state() == State::connected);
    CHECK(h.gateway->metrics().sessions == 1);

    auto& again = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return again.state() == State::refused && again.cause() == Reason::unknown_identity; }));

    // Authorized again: a refused session comes back by itself at its next attempt.
    agent.session->stop();  // one session per identity
    h.write_authorized(true);
    REQUIRE(h.gateway->reload().ok());
    REQUIRE(h.run_until([&] { return again.state() == State::connected; }, 3000ms));
    CHECK(again.authenticated == 1);
}

TEST_CASE("a second session of one identity replaces the first", "[session]") {
    Harness h;
    auto options = h.options_for(h.agent_key);
    options.backoff_max = 4000ms;
    auto& first = h.client(options);
    REQUIRE(h.run_until([&] { return first.state() == State::connected; }));
    auto& second = h.client(h.agent_key);
    const auto replaced_at = std::chrono::system_clock::now();
    REQUIRE(h.run_until([&] { return second.state() == State::connected && first.state() == State::backing_off; }));
    REQUIRE(first.last_cause.has_value());
    CHECK(first.last_cause->message.find("replaced") != std::string::npos);
    CHECK(first.cause() == Reason::replaced);
    // It waits its longest backoff (over its upper half), not the short first delay, before it
    // would take the identity back.
    CHECK(first.session->stats().next_attempt - replaced_at >= 2000ms);
    h.run_for(500ms);
    CHECK(second.state() == State::connected);
    first.session->stop();
    h.run_for(100ms);
    CHECK(h.gateway->metrics().sessions == 1);
}

TEST_CASE("forged batches and unreadable frames are answered, never delivered", "[session]") {
    // The gateway verifies origin signatures only when asked; either way no subscriber gets a forged batch.
    const bool verifying = GENERATE(true, false);
    CAPTURE(verifying);
    Harness::Limits limits;
    limits.verify_signatures = verifying;
    Harness h(limits);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return backend.state() == State::connected; }));
    backend.session->set_subscriptions(31, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(31); }));

    RawClient raw(h.io, h.url(), h.agent_key, h.gateway_key.public_key());
    REQUIRE(h.run_until([&] { return raw.records.has_value(); }));

    auto forged = make_batch(h.agent_key, "host42", "agent.host42.anomalies", "harmless");
    forged.messages.at(0).payload.at(0) ^= 0x20;  // altered after signing
    aegis::protocol::Frame publish;
    publish.type = aegis::protocol::FrameType::publish;
    publish.request_id = 41;
    publish.batch = aegis::protocol::encode_batch(forged);
    raw.send_frame(publish);

    raw.send_plaintext(Bytes{0xee, 0x01, 0x02});  // authentic record, undecodable frame

    publish.request_id = 0;  // reserved: its puback would mean "not tied to a request"
    publish.batch =
        aegis::protocol::encode_batch(make_batch(h.agent_key, "host42", "agent.host42.anomalies", "unnumbered"));
    raw.send_frame(publish);

    publish.request_id = 42;
    publish.batch =
        aegis::protocol::encode_batch(make_batch(h.agent_key, "host42", "agent.host42.anomalies", "genuine"));
    raw.send_frame(publish);

    REQUIRE(h.run_until([&] { return raw.answer_to(42) != nullptr && backend.delivered.size() == 1; }));
    const auto* forged_answer = raw.answer_to(41);
    REQUIRE(forged_answer != nullptr);
    if (verifying) {
        CHECK(forged_answer->type == aegis::protocol::FrameType::error);
        CHECK(forged_answer->reason == Reason::bad_signature);
        CHECK(backend.session->stats().rejected_batches == 0);  // it never left the gateway
    } else {
        // Stored and relayed; the receiving session drops it before delivery and acknowledges it.
        CHECK(forged_answer->type == aegis::protocol::FrameType::puback);
        REQUIRE(h.run_until([&] { return backend.session->stats().rejected_batches == 1; }));
    }
    const auto* malformed = raw.answer_to(0);
    REQUIRE(malformed != nullptr);
    CHECK(malformed->type == aegis::protocol::FrameType::error);
    CHECK(malformed->reason == Reason::malformed);
    CHECK(raw.answer_to(42)->type == aegis::protocol::FrameType::puback);
    CHECK(raw.answer_to(42)->sequence == 1);
    // Only the genuine batch reached the subscriber, and the session went on.
    CHECK(payload_of(backend.delivered.at(0).second) == "genuine");
    h.run_for(100ms);
    CHECK(backend.delivered.size() == 1);
    CHECK_FALSE(raw.closed);
    CHECK(h.gateway->metrics().refusal_count("bad_signature") == (verifying ? 1 : 0));
    CHECK(h.gateway->metrics().refusal_count("malformed") == 2);
    const auto unnumbered = raw.answers_to(0);
    CHECK(unnumbered.size() == 2);  // the undecodable frame and the publish with request id 0
    for (const auto* answer : unnumbered) {
        CHECK(answer->type == aegis::protocol::FrameType::error);
        CHECK(answer->reason == Reason::malformed);
    }
}

TEST_CASE("a connection that never finishes the handshake is closed on time", "[session]") {
    Harness h;
    // Shared with the handlers, which may outlive this scope inside the transport.
    auto idle = std::make_shared<std::shared_ptr<aegis::net::Connection>>();
    auto closed = std::make_shared<bool>(false);
    aegis::net::connect(h.io, h.url(), aegis::net::ClientOptions{},
                        [idle, closed](aegis::Result<std::shared_ptr<aegis::net::Connection>> made) {
                            REQUIRE(made.ok());
                            *idle = std::move(made.value());
                            (*idle)->start([](Bytes) {}, [closed](const Error&) { *closed = true; });
                        });
    REQUIRE(h.run_until([&] { return h.gateway->metrics().connections == 1; }));
    REQUIRE(h.run_until([&] { return *closed; }, 4000ms));
    CHECK(h.gateway->metrics().handshake_failures("timeout") == 1);
    CHECK(h.gateway->metrics().refusal_count("timeout") == 1);
    REQUIRE(h.run_until([&] { return h.gateway->metrics().connections == 0; }));
}

TEST_CASE("metrics render as Prometheus text", "[session]") {
    Harness h;
    auto& stranger = h.client(h.stranger_key);
    REQUIRE(h.run_until([&] { return stranger.state() == State::refused; }));
    const auto text = aegis::gateway::render_prometheus(h.gateway->metrics());
    CHECK(text.find("# TYPE aegis_gateway_sessions gauge\naegis_gateway_sessions 0\n") != std::string::npos);
    CHECK(text.find("aegis_gateway_handshakes_total{result=\"ok\"} 0\n") != std::string::npos);
    CHECK(text.find("aegis_gateway_handshakes_total{result=\"failed\",reason=\"unknown_identity\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("aegis_gateway_refusals_total{reason=\"unknown_identity\"} 1\n") != std::string::npos);
    CHECK(text.find("# TYPE aegis_gateway_messages_in_total counter") != std::string::npos);
}

TEST_CASE("past --max-sessions a new identity is refused busy and keeps retrying", "[session]") {
    Harness h(Harness::Limits{1, 16 * 1024 * 1024});
    auto& agent = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected; }));
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return h.gateway->metrics().handshake_failures("busy") >= 2; }));
    CHECK(backend.cause() == Reason::busy);
    CHECK(backend.state() != State::stopped);
    CHECK(backend.authenticated == 0);
    CHECK(h.gateway->metrics().refusal_count("busy") >= 2);
    // The same identity again is a replacement, not a new session: admitted.
    auto& replacement = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return replacement.state() == State::connected; }));
    agent.session->stop();

    // A freed slot lets the refused one in on its next attempt.
    replacement.session->stop();
    REQUIRE(h.run_until([&] { return backend.state() == State::connected; }));
}

TEST_CASE("a batch over --max-message-bytes is refused too_large", "[session]") {
    Harness h(Harness::Limits{10, 2048});
    auto& agent = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected; }));
    REQUIRE(agent.session->publish(51, make_batch(h.agent_key, "host42", "agent.host42.logs", std::string(4000, 'x'))));
    REQUIRE(agent.session->publish(52, make_batch(h.agent_key, "host42", "agent.host42.logs", "small")));
    REQUIRE(h.run_until([&] { return agent.publish_results.size() == 2; }));
    REQUIRE_FALSE(agent.publish_results.at(51).ok());
    CHECK(aegis::protocol::reason_of(agent.publish_results.at(51).error()) == Reason::too_large);
    CHECK(agent.publish_results.at(52).ok());
    CHECK(agent.state() == State::connected);
}

TEST_CASE("an unreachable gateway: backing off with growing, jittered delays, never stopped", "[session]") {
    Harness h;
    const auto port = h.port;
    h.stop_gateway();
    auto options = h.options_for(h.agent_key);
    options.url = aegis::net::parse_url("ws://127.0.0.1:" + std::to_string(port) + "/").value();
    auto& agent = h.client(std::move(options));
    REQUIRE(h.run_until([&] {
        int backoffs = 0;
        for (auto state : agent.states) backoffs += state == State::backing_off ? 1 : 0;
        return backoffs >= 3;
    }));
    CHECK(agent.states.front() == State::connecting);
    CHECK(agent.state() != State::stopped);
    REQUIRE(agent.last_cause.has_value());
    CHECK(agent.last_cause->exit == aegis::ExitCode::unreachable);
    const auto stats = agent.session->stats();
    CHECK(stats.reconnects == 0);
    CHECK(stats.last_error.has_value());
    if (stats.state == State::backing_off) {
        // Full jitter within [floor, backoff_max] (plus scheduling slack).
        CHECK(stats.next_attempt <= std::chrono::system_clock::now() + 400ms);
    }
    agent.session->stop();
    CHECK(agent.state() == State::stopped);
    const auto states_when_stopped = agent.states.size();
    h.run_for(400ms);
    CHECK(agent.states.size() == states_when_stopped);  // no attempt after stop()
}

TEST_CASE("the application heartbeat ticks only while connected", "[session]") {
    Harness h;
    auto options = h.options_for(h.agent_key);
    options.heartbeat_interval = 40ms;
    int beats = 0;
    aegis::session::SessionEvents events;
    events.on_heartbeat = [&] { ++beats; };
    aegis::session::ClientSession session(h.io, std::move(options), std::move(events));
    session.start();
    REQUIRE(h.run_until([&] { return beats >= 3; }));
    CHECK(session.stats().state == State::connected);
    session.stop();
    const int at_stop = beats;
    h.run_for(200ms);
    CHECK(beats == at_stop);
}

TEST_CASE("set_subscriptions replaces the set: removed patterns stop, large sets are split", "[session]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));

    // 300 patterns: more than one frame may carry, answered once.
    std::vector<std::string> many{"agent.host42.>"};
    for (int i = 0; i < 299; ++i) many.push_back("agent.host" + std::to_string(i) + ".logs");
    backend.session->set_subscriptions(61, many);
    REQUIRE(h.run_until([&] { return backend.subscribed(61); }));
    CHECK(backend.subscribe_results.size() == 1);

    backend.session->set_subscriptions(62, {"agent.host42.logs"});
    REQUIRE(h.run_until([&] { return backend.subscribed(62); }));
    REQUIRE(agent.session->publish(63, make_batch(h.agent_key, "host42", "agent.host42.anomalies", "dropped")));
    REQUIRE(agent.session->publish(64, make_batch(h.agent_key, "host42", "agent.host42.logs", "kept")));
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 1 && agent.publish_results.size() == 2; }));
    CHECK(payload_of(backend.delivered.at(0).second) == "kept");

    backend.session->set_subscriptions(65, {});
    REQUIRE(h.run_until([&] { return backend.subscribed(65); }));
    REQUIRE(agent.session->publish(66, make_batch(h.agent_key, "host42", "agent.host42.logs", "nobody")));
    REQUIRE(h.run_until([&] { return agent.publish_results.count(66) == 1; }));
    h.run_for(100ms);
    CHECK(backend.delivered.size() == 1);

    backend.session->set_subscriptions(67, {});  // already empty: answered without a round trip
    REQUIRE(h.run_until([&] { return backend.subscribed(67); }));
}

TEST_CASE("trust on first use: an accepted key connects; no pin and no decision is refused", "[session]") {
    Harness h;
    auto options = h.options_for(h.agent_key);
    options.pinned_server_keys.clear();
    int asked = 0;
    aegis::session::SessionEvents events;
    events.on_server_key = [&](const aegis::crypto::PublicKey& key) {
        ++asked;
        return key == h.gateway_key.public_key();
    };
    aegis::session::ClientSession trusting(h.io, options, std::move(events));
    trusting.start();
    REQUIRE(h.run_until([&] { return trusting.stats().state == State::connected; }));
    CHECK(asked == 1);
    trusting.stop();

    auto& undecided = h.client(options);  // Client sets no on_server_key
    REQUIRE(h.run_until([&] { return undecided.state() == State::stopped; }));
    CHECK(undecided.cause() == Reason::server_key_mismatch);
}

namespace {

std::vector<std::string> payloads(const Client& client) {
    std::vector<std::string> out;
    for (const auto& [sequence, batch] : client.delivered) out.push_back(payload_of(batch));
    return out;
}

// Publishes `texts` from the agent on agent.host42.logs and waits for every puback.
void publish_all(Harness& h, Client& agent, std::uint32_t first_request, const std::vector<std::string>& texts) {
    std::uint32_t request = first_request;
    for (const auto& text : texts)
        REQUIRE(agent.session->publish(request++, make_batch(h.agent_key, "host42", "agent.host42.logs", text)));
    REQUIRE(h.run_until([&] {
        for (std::uint32_t id = first_request; id < request; ++id)
            if (agent.publish_results.count(id) == 0) return false;
        return true;
    }));
    for (std::uint32_t id = first_request; id < request; ++id) CHECK(agent.publish_results.at(id).ok());
}

}  // namespace

TEST_CASE("an offline identity gets what was stored for it when it comes back", "[session][durable]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto* backend = &h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend->state() == State::connected; }));
    backend->session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend->subscribed(1); }));
    backend->session->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 1; }));

    publish_all(h, agent, 10, {"one", "two", "three"});
    CHECK(h.gateway->metrics().inbox_messages == 3);

    // A new process: no token, so a fresh session; the identity's inbox is still its own.
    auto& again = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return again.state() == State::connected; }));
    h.run_for(100ms);
    CHECK(again.delivered.empty());  // a fresh session is served once it has subscribed
    again.session->set_subscriptions(2, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return again.delivered.size() == 3; }));
    CHECK(payloads(again) == std::vector<std::string>{"one", "two", "three"});
    CHECK(again.delivered.at(0).first == 1);
    CHECK(again.delivered.at(2).first == 3);
    // The session acknowledged each after on_deliver: the inbox empties.
    REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 0; }));
    CHECK(h.gateway->metrics().sessions_fresh == 3);
}

TEST_CASE("a gateway restarted on the same state dir delivers what it stored after the resume", "[session][durable]") {
    Harness h;
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(1); }));
    publish_all(h, agent, 10, {"live"});
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 1; }));
    const auto token = backend.session->session_token();
    CHECK(token != aegis::protocol::SessionToken{});
    REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 0; }));  // its ack is stored

    backend.session->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 1; }));
    publish_all(h, agent, 20, {"while away 1", "while away 2"});

    const auto port = h.port;
    h.stop_gateway();
    h.start_gateway(port);
    CHECK(h.gateway->metrics().inbox_messages == 2);
    backend.session->start();  // same ClientSession: presents its token
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 3; }, 8000ms));
    CHECK(payloads(backend) == std::vector<std::string>{"live", "while away 1", "while away 2"});
    // Sequence numbers are the identity's inbox positions: they go on across the restart.
    CHECK(backend.delivered.at(1).first == 2);
    CHECK(backend.delivered.at(2).first == 3);
    CHECK(backend.session->session_token() == token);
    CHECK(backend.session->grant()->resume_point == 1);
    CHECK(h.logged("session=resumed resume_point=1"));
    CHECK(h.gateway->metrics().sessions_resumed >= 1);  // the agent may have come back too
    REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 0; }));
}

TEST_CASE("deliver_ack removes; what was not acknowledged comes again, within the replay window",
          "[session][durable]") {
    Harness::Limits limits;
    limits.replay_window = 2;
    Harness h(limits);
    auto& agent = h.client(h.agent_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected; }));
    std::vector<std::string> texts = {"m1", "m2", "m3", "m4", "m5"};
    {
        RawClient raw(h.io, h.url(), h.backend_key, h.gateway_key.public_key());
        REQUIRE(h.run_until([&] { return raw.records.has_value(); }));
        aegis::protocol::Frame subscribe;
        subscribe.type = aegis::protocol::FrameType::subscribe;
        subscribe.request_id = 5;
        subscribe.patterns = {"agent.host42.>"};
        raw.send_frame(subscribe);
        REQUIRE(h.run_until([&] { return raw.answer_to(5) != nullptr; }));
        publish_all(h, agent, 10, texts);
        auto deliveries = [&] {
            std::vector<std::uint64_t> out;
            for (const auto& frame : raw.frames)
                if (frame.type == aegis::protocol::FrameType::deliver) out.push_back(frame.sequence);
            return out;
        };
        h.run_for(200ms);
        CHECK(deliveries() == std::vector<std::uint64_t>{1, 2});  // the window is full until an ack
        aegis::protocol::Frame ack;
        ack.type = aegis::protocol::FrameType::deliver_ack;
        ack.sequence = 2;
        raw.send_frame(ack);
        REQUIRE(h.run_until([&] { return deliveries().size() == 4; }));
        CHECK(deliveries() == std::vector<std::uint64_t>{1, 2, 3, 4});
        REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 3; }));
    }
    // Gone without acknowledging 3 and 4: a new session gets them again, then 5.
    auto& backend = h.client(h.backend_key);
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 3; }));
    CHECK(payloads(backend) == std::vector<std::string>{"m3", "m4", "m5"});
    CHECK(backend.delivered.at(0).first == 3);
    REQUIRE(h.run_until([&] { return h.gateway->metrics().inbox_messages == 0; }));
}

TEST_CASE("an inbox over --inbox-max-messages drops its oldest and counts them", "[session][durable]") {
    Harness::Limits limits;
    limits.inbox_max_messages = 3;
    limits.drop_log_interval = 1500ms;
    Harness h(limits);
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(1); }));
    backend.session->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 1; }));
    publish_all(h, agent, 10, {"a", "b", "c", "d", "e"});
    publish_all(h, agent, 20, {"f", "g"});  // separate commits, each dropping one
    CHECK(h.gateway->metrics().dropped("full") == 4);
    CHECK(h.gateway->metrics().inbox_messages == 3);
    // One line for the burst at once, then one for the rest once the interval is over.
    CHECK(h.count_logged("inbox of id=soc is full") == 1);
    REQUIRE(h.run_until([&] { return h.count_logged("inbox of id=soc is full") == 2; }));
    CHECK(h.logged("more oldest messages in the last 1.5 s"));
    h.run_for(1600ms);  // nothing more was dropped: no further line
    CHECK(h.count_logged("inbox of id=soc is full") == 2);
    CHECK(aegis::gateway::render_prometheus(h.gateway->metrics())
              .find("aegis_gateway_inbox_dropped_total{cause=\"full\"} 4") != std::string::npos);
    backend.session->start();
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 3; }));
    CHECK(payloads(backend) == std::vector<std::string>{"e", "f", "g"});
}

TEST_CASE("the replay rate paces a backlog: a burst of one second's worth, then one at a time", "[session][durable]") {
    Harness::Limits limits;
    limits.replay_rate = 5;
    Harness h(limits);
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(1); }));
    backend.session->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 1; }));
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) texts.push_back("r" + std::to_string(i));
    publish_all(h, agent, 10, texts);

    backend.session->start();
    REQUIRE(h.run_until([&] { return backend.delivered.size() >= 5; }));
    const auto burst_done = std::chrono::steady_clock::now();
    CHECK(backend.delivered.size() <= 6);
    REQUIRE(h.run_until([&] { return backend.delivered.size() == 8; }, 5000ms));
    // Three more at five a second take about 0.6 s.
    CHECK(std::chrono::steady_clock::now() - burst_done >= 350ms);
    CHECK(payloads(backend) == texts);
}

TEST_CASE("stored messages past --inbox-max-age are pruned, logged and counted", "[session][durable]") {
    Harness::Limits limits;
    limits.inbox_max_age = 1s;
    Harness h(limits);
    auto& agent = h.client(h.agent_key);
    auto& backend = h.client(h.backend_key);
    REQUIRE(h.run_until([&] { return agent.state() == State::connected && backend.state() == State::connected; }));
    backend.session->set_subscriptions(1, {"agent.host42.>"});
    REQUIRE(h.run_until([&] { return backend.subscribed(1); }));
    backend.session->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 1; }));
    publish_all(h, agent, 10, {"stale 1", "stale 2"});
    CHECK(h.gateway->metrics().inbox_messages == 2);
    REQUIRE(h.run_until([&] { return h.gateway->metrics().dropped("expired") == 2; }, 4000ms));
    CHECK(h.gateway->metrics().inbox_messages == 0);
    CHECK(h.logged("inbox of id=soc: 2 messages expired unacknowledged"));
}

TEST_CASE("a token kept by the caller resumes in a new ClientSession; a bogus one gets a fresh session",
          "[session][durable]") {
    Harness h;
    std::vector<aegis::protocol::SessionToken> announced;
    auto options = h.options_for(h.backend_key);
    aegis::session::SessionEvents events;
    events.on_session_token = [&](const aegis::protocol::SessionToken& token) { announced.push_back(token); };
    auto first = std::make_unique<aegis::session::ClientSession>(h.io, options, events);
    first->start();
    REQUIRE(h.run_until([&] { return first->stats().state == State::connected; }));
    REQUIRE(announced.size() == 1);
    CHECK(announced.at(0) == first->session_token());
    first->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 0; }));

    // What a broker that persisted the token does after its own restart.
    options.resume_token = announced.at(0);
    auto second = std::make_unique<aegis::session::ClientSession>(h.io, options, events);
    second->start();
    REQUIRE(h.run_until([&] { return second->stats().state == State::connected; }));
    CHECK(announced.size() == 1);  // the same token: nothing new to keep
    CHECK(second->session_token() == announced.at(0));
    CHECK(h.logged("session=resumed resume_point=0"));
    second->stop();
    REQUIRE(h.run_until([&] { return h.gateway->metrics().sessions == 0; }));

    options.resume_token.fill(0x5a);  // unknown to the gateway: not refused, a fresh session
    auto third = std::make_unique<aegis::session::ClientSession>(h.io, options, events);
    third->start();
    REQUIRE(h.run_until([&] { return third->stats().state == State::connected; }));
    REQUIRE(announced.size() == 2);
    CHECK(announced.at(1) != announced.at(0));
    CHECK(third->session_token() == announced.at(1));
    CHECK(h.gateway->metrics().sessions_resumed == 1);
    CHECK(h.gateway->metrics().sessions_fresh == 2);
}

TEST_CASE("a session token reaches the state file soon after the handshake with no other traffic",
          "[session][durable]") {
    Harness h;
    auto& backend = h.client(h.backend_key);  // a backend sends no heartbeats: nothing else to commit
    REQUIRE(h.run_until([&] { return backend.state() == State::connected; }));
    const auto token = backend.session->session_token();
    const auto commits = h.gateway->metrics().store_commits;
    // What a gateway killed now would find on restart, read through a connection of its own.
    const auto on_file = [&] {
        auto db = aegis::store::Database::open(h.dir / "state" / "gateway.db", aegis::store::OpenMode::read_only);
        REQUIRE(db.ok());
        auto row = db.value()->prepare("SELECT token FROM identities WHERE id = 'soc'");
        REQUIRE(row.ok());
        auto stepped = row->step();
        REQUIRE(stepped.ok());
        return *stepped && row->column_blob(0) == aegis::Bytes(token.begin(), token.end());
    };
    REQUIRE(h.run_until(on_file, 2000ms));
    CHECK(h.gateway->metrics().store_commits == commits + 1);  // one commit of its own, on the timer
}
