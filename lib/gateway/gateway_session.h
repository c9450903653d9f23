#pragma once
// One client connection on the gateway: the server handshake under a timeout, then records
// carrying frames (publish, subscribe, unsubscribe, deliver_ack) checked against the
// identity's access policy.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channel/channel.h"
#include "gateway/authorized_keys.h"
#include "gateway/backplane.h"
#include "gateway/session_host.h"
#include "net/websocket.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/record.h"
#include "store/gateway_state.h"

namespace aegis::gateway {

struct SessionSettings {
    const crypto::SigningKey* identity = nullptr;
    Bytes certificate;  // the gateway's own certificate, for brokers that trust it by CA; empty: none
    std::uint64_t clock_skew_ms = protocol::kDefaultClockSkewMs;
    std::chrono::milliseconds handshake_timeout{10'000};
    std::size_t max_message_bytes = protocol::kMaxBatchBytes;
    bool verify_signatures = false;  // refuse a badly signed batch (bad_signature) rather than relay it
    std::size_t max_record_bytes = protocol::kMaxBatchBytes + 4096;  // one WebSocket message once the handshake is done
    std::size_t max_subscriptions = 1024;
    std::size_t replay_window = 64;  // deliver frames in flight (sent, not acknowledged) at most
    std::uint32_t replay_rate = 0;   // deliver frames per second at most; 0 = no limit
};

class GatewaySession : public std::enable_shared_from_this<GatewaySession> {
public:
    GatewaySession(boost::asio::io_context& io, std::shared_ptr<net::Connection> connection, SessionHandle handle,
                   const SessionSettings& settings, protocol::ReplayCache& replay_cache,
                   std::weak_ptr<SessionHost> host);

    void start();
    // Says goodbye (or refuses a handshake in progress) with `reason`, then closes.
    void close_with(protocol::Reason reason, std::string_view text);
    // A reload changed this identity's narrowing: new policy; subscriptions it no longer allows are dropped.
    void update_identity(const AuthorizedIdentity& identity);

    [[nodiscard]] SessionHandle handle() const { return handle_; }
    [[nodiscard]] bool established() const { return phase_ == Phase::established; }
    [[nodiscard]] const AuthorizedIdentity& identity() const { return identity_; }
    [[nodiscard]] const std::string& peer() const { return peer_; }
    [[nodiscard]] const protocol::SessionToken& token() const { return token_; }
    // Unix ms: when the handshake finished (0: not yet), and when the peer last sent anything.
    [[nodiscard]] std::uint64_t established_ms() const { return established_ms_; }
    [[nodiscard]] std::uint64_t last_seen_ms() const { return last_seen_ms_; }
    // The software version the broker reported in its ClientAuth (PROTOCOL.md §3.1); empty: none.
    [[nodiscard]] const std::string& software() const { return software_; }

    // The group commit holding this session's publish finished: puback, or an error.
    void publish_stored(std::uint32_t request_id, std::size_t messages, bool stored);
    // The group commit kept nothing of the publish, for `reason` (no_responders): an error frame.
    void publish_refused(std::uint32_t request_id, protocol::Reason reason, std::string text);
    // Sends what the identity's inbox holds beyond what is in flight, within the window and rate.
    void pump();

private:
    // opening: authenticated and admitted, waiting for the state store to open the session.
    enum class Phase : std::uint8_t { awaiting_hello, awaiting_auth, opening, established, closing, closed };

    void on_message(Bytes message);
    void on_transport_closed(const Error& why);
    void on_handshake_timeout();
    void on_client_hello(ByteView message);
    void on_client_auth(ByteView message);
    void on_resumed(Result<ResumeGrant> resumed);
    void answer_probe(SessionHost& host, const protocol::ClientClaim& claim);
    void on_record(ByteView record);
    void on_frame(const protocol::Frame& frame);
    void on_publish(const protocol::Frame& frame);
    void on_subscribe(const protocol::Frame& frame);
    void on_unsubscribe(const protocol::Frame& frame);
    void subscription_saved(std::uint32_t request_id, const Result<void>& saved, bool subscribed);
    void on_deliver_ack(std::uint64_t sequence);
    void on_inbox(Result<std::vector<store::StoredBatch>> stored);
    void add_subscriptions(const std::vector<std::string>& patterns);
    void remove_subscriptions(const std::vector<std::string>& patterns);
    void schedule_pump(std::chrono::milliseconds delay);
    [[nodiscard]] bool take_rate_token();

    void refuse_handshake(protocol::Reason reason, std::string_view detail);
    void refuse_request(std::uint32_t request_id, protocol::Reason reason, std::string text);
    // access_denied for a publish or subscribe ("action"), counted by action.
    void deny(std::uint32_t request_id, std::string_view action, std::string text);
    void send_frame(const protocol::Frame& frame);
    void send_raw(Bytes bytes);
    void log(std::string_view line);

    std::shared_ptr<net::Connection> connection_;
    SessionHandle handle_;
    SessionSettings settings_;
    std::weak_ptr<SessionHost> host_;
    std::string peer_;
    Phase phase_ = Phase::awaiting_hello;
    std::string close_reason_;  // set when this side closes, for the disconnect line
    boost::asio::steady_timer handshake_timer_;
    std::optional<protocol::ServerHandshake> handshake_;  // until the session is established
    std::optional<protocol::RecordLayer> records_;
    AuthorizedIdentity identity_;
    std::string software_;
    std::optional<channel::AccessPolicy> policy_;
    protocol::SessionToken token_{};
    std::vector<std::string> subscriptions_;  // this session's live set; stored as the identity's set
    bool delivering_ = false;                 // resumed, or subscribed since a fresh handshake
    bool subscribed_since_handshake_ = false;
    std::uint64_t sent_ = 0;          // highest inbox sequence sent on this connection
    std::uint64_t acknowledged_ = 0;  // highest deliver_ack
    boost::asio::steady_timer pump_timer_;
    bool pump_scheduled_ = false;
    bool reading_ = false;     // an inbox read is in flight
    bool pump_again_ = false;  // pump() was asked for while it was
    double rate_tokens_ = 0;
    std::uint64_t established_ms_ = 0;
    std::chrono::steady_clock::time_point accepted_at_ = std::chrono::steady_clock::now();
    // Sent and not yet acknowledged: inbox sequence and when it was stored, for the delivery latency.
    // At most replay_window entries, oldest first; a vector, as an idle session's holds no memory.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> unacknowledged_;
    std::uint64_t last_seen_ms_ = 0;
    std::chrono::steady_clock::time_point rate_refilled_{};
};

}  // namespace aegis::gateway
