#pragma once
// The broker's side of one secure session to the gateway: connect, handshake, records, frames,
// and reconnect with exponential backoff and full jitter after any drop. Runs on the caller's
// io_context; every event handler is called on that thread.
//
// Retrying: after a drop the next attempt waits uniform(0, min(backoff_max, backoff_min * 2^n))
// (full jitter; n = failed attempts in a row), never less than 100 ms; n resets once a connection
// has lasted 10 s. A refusal of this identity (unknown_identity, revoked) is State::refused: the
// session tries again after uniform(backoff_max / 2, backoff_max), so a key authorized again
// comes back by itself, and stays refused through those attempts until one succeeds or fails
// otherwise. A goodbye `replaced` (another session of this identity logged in: a second process
// with the same key) waits the same uniform(backoff_max / 2, backoff_max), so two such processes
// do not knock each other off at every reconnect. Refusals a retry cannot fix stop the session
// (State::stopped with the error): server_key_mismatch, unsupported_version. Everything else
// (unreachable, timeout, busy, shutting_down, stale_timestamp, another goodbye) backs off and retries.
// Publish and subscribe requests still unanswered when a connection drops get no result: the
// caller re-sends after on_authenticated. Request id 0 is reserved (frames not tied to a request).
//
// Several gateways (a cluster sharing its state): ClientSessionOptions::url and other_urls are
// tried in a random order, one attempt each, with the backoff above between attempts; a failed
// attempt moves to the next, and a connection that ends after its handshake starts over with a
// fresh random order. Every gateway of the cluster must pass the same key or certificate check.
//
// Resuming (PROTOCOL.md §3.5): the session token of the last handshake is kept and presented on
// every reconnect, so the gateway restores the subscriptions and re-delivers whatever it stored
// for this identity after the acknowledged point. The token lives in memory; a caller that wants
// resumption across its own restarts persists it (on_session_token) and passes it back in
// ClientSessionOptions::resume_token.
//
// Acknowledging: on_deliver decides. A deliver is acknowledged (deliver_ack) once on_deliver has
// returned success, because the gateway deletes what was acknowledged. On an error it is not, and
// the connection ends (backing off with that error): deliver_ack is cumulative, so acknowledging a
// later deliver would give the failed one up too. After the backoff the gateway delivers again
// from the last acknowledged point. Deliveries may repeat after a reconnect (at least once): the
// receiver drops duplicates by message id.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "crypto/primitives.h"
#include "net/websocket.h"
#include "protocol/envelope.h"
#include "protocol/handshake.h"
#include "protocol/record.h"

namespace aegis::session {

enum class State : std::uint8_t {
    connecting,   // TCP/TLS/WebSocket and the Aegis handshake under way
    connected,    // authenticated; frames flow
    backing_off,  // waiting before the next attempt
    refused,      // the gateway refused this identity (unknown_identity, revoked); tried again at backoff_max
    stopped,      // stop() was called, or a refusal that retrying cannot fix
};

[[nodiscard]] std::string_view to_string(State state);

struct ClientSessionOptions {
    net::Url url;
    std::vector<net::Url> other_urls;  // further gateways of the same cluster
    net::ClientOptions transport;
    const crypto::SigningKey* identity = nullptr;
    Bytes certificate;  // an operator CA's certificate of the identity, sent in ClientAuth; empty: none
    // The gateway keys accepted; empty: on_server_key decides (none: refused).
    std::vector<crypto::PublicKey> pinned_server_keys;
    // Operator CAs whose gateway certificates (PROTOCOL.md §2.1, role gateway) are trusted instead
    // of a pinned key: the gateway is asked for its certificate and judged by it.
    std::vector<crypto::PublicKey> gateway_cas;
    std::string requested_id;
    std::chrono::milliseconds backoff_min{5'000};
    std::chrono::milliseconds backoff_max{60'000};
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds heartbeat_interval{30'000};  // application heartbeat; 0 = off
    std::uint64_t max_clock_skew_ms = protocol::kDefaultClockSkewMs;
    protocol::RekeyPolicy rekey;
    protocol::SessionToken resume_token{};  // from an earlier run (all zero: none)
    // Reported to a gateway that takes it (PROTOCOL.md §3.1) and shown in its fleet view.
    std::string software = "aegis-connect (Aegis) " AEGIS_VERSION;
    // Only judge this identity (aegis-connect --check): a gateway that takes probes answers
    // without opening, resuming or replacing a session, and the session goes to State::connected
    // with nothing to send (the caller stops it); one that does not is never sent a login.
    bool probe = false;
};

struct SessionStats {
    State state = State::stopped;
    std::uint64_t reconnects = 0;
    std::uint64_t rekeys = 0;
    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t rejected_batches = 0;  // delivered batches whose signature did not verify (dropped)
    std::chrono::microseconds last_rtt{0};
    std::chrono::system_clock::time_point connected_since{};
    std::chrono::system_clock::time_point next_attempt{};
    std::optional<Error> last_error;
};

struct SessionEvents {
    // Each state change, with the error that caused it when there is one.
    std::function<void(State state, const Error* cause)> on_state;
    // Trust on first use: called with an unpinned server key before the client reveals its
    // identity; return false to refuse it (the session stops with server_key_mismatch).
    std::function<bool(const crypto::PublicKey& server_key)> on_server_key;
    // After each successful handshake (first connect and every reconnect).
    std::function<void(const protocol::Accepted& grant, const crypto::PublicKey& server_key)> on_authenticated;
    // A batch from the gateway, its origin signature already verified. Success: acknowledged to
    // the gateway (handle or store every message before returning it). An error: not
    // acknowledged; the connection ends with that error and the batch comes again after the backoff.
    std::function<Result<void>(std::uint64_t sequence, protocol::SignedBatch batch)> on_deliver;
    // A batch from the gateway that does not decode or whose origin signature does not verify:
    // never given to on_deliver, acknowledged all the same (it will never become valid).
    std::function<void(std::uint64_t sequence, const Error& why)> on_rejected;
    // The gateway gave a new session token (first handshake, or the old one was not valid any more).
    std::function<void(const protocol::SessionToken& token)> on_session_token;
    // The gateway's answer to publish(request_id) / subscribe(request_id).
    std::function<void(std::uint32_t request_id, Result<void> outcome)> on_publish_result;
    std::function<void(std::uint32_t request_id, Result<void> outcome)> on_subscribe_result;
    // Application heartbeat tick while connected: the broker publishes agent.<id>.heartbeat.
    std::function<void()> on_heartbeat;
};

class ClientSession {
public:
    ClientSession(boost::asio::io_context& io, ClientSessionOptions options, SessionEvents events);
    ~ClientSession();
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    void start();
    void stop();
    // Backing off or refused: the next attempt starts now (true). Otherwise nothing (false).
    [[nodiscard]] bool reconnect_now();

    // False when not connected (the caller keeps the batch queued and retries on reconnect).
    [[nodiscard]] bool publish(std::uint32_t request_id, const protocol::SignedBatch& batch);
    // Replaces the subscription set; it is sent now if connected and again after each reconnect.
    void set_subscriptions(std::uint32_t request_id, std::vector<std::string> patterns);
    // Tells the gateway everything up to `sequence` was received (delivery resume point). Done
    // by the session itself after each successful on_deliver; calling it again is harmless.
    void acknowledge(std::uint64_t sequence);
    // The token the next handshake presents (all zero before the first one).
    [[nodiscard]] const protocol::SessionToken& session_token() const;

    [[nodiscard]] SessionStats stats() const;
    [[nodiscard]] const protocol::Accepted* grant() const;  // null before the first handshake
    // The gateway of the current (or last) attempt: url or one of other_urls.
    [[nodiscard]] const net::Url& current_url() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace aegis::session
