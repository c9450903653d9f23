#pragma once
// Private to lib/broker: the broker's state, shared by broker.cpp (wiring, status, lifecycle),
// broker_outbound.cpp (publishing, over the outbound flow of outbound_flow.h) and
// broker_inbound.cpp (subscriptions and fan-out).

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/broker.h"
#include "broker/durable_cursors.h"
#include "broker/outbound_flow.h"
#include "broker/stored_outbound_queue.h"
#include "broker/subscription_changes.h"
#include "broker/waiter.h"
#include "channel/channel.h"
#include "core/log_throttle.h"
#include "ipc/messages.h"
#include "ipc/server.h"
#include "protocol/message_id_hash.h"
#include "store/dedup_store.h"
#include "store/durable_inbox.h"
#include "store/outbound_store.h"

namespace aegis::broker {

inline constexpr std::chrono::milliseconds kRetryDelay{1'000};
// Acknowledged messages are removed from the file with the next commit of publishes, or after
// this long: a request's removal then rides along with the next request's commit. Removal can
// wait, since one that is lost (a crash) only sends the message again, which the receiver drops.
inline constexpr std::chrono::milliseconds kRemovalDelay{20};
inline constexpr std::chrono::milliseconds kStopGrace{3'000};

// A channel the gateway refused as disabled (PROTOCOL.md §9, channel_disabled): its messages
// wait in the queue, not sent before `until_ms`, while other channels go on.
struct ChannelHold {
    std::string message;  // the gateway's words
    std::uint64_t since_ms = 0;
    std::uint64_t until_ms = 0;
    std::uint32_t refusals = 0;  // in a row; the delay doubles with each
    bool probing = false;        // one batch went to ask whether the channel is enabled again
};
// A disabled channel is asked again after 1 s, doubling up to this (jittered over its upper half).
inline constexpr std::uint64_t kMaxHoldMs = 30'000;
// Channels counted by name in status; past this, the rest are counted under "other".
inline constexpr std::size_t kMaxCountedChannels = 256;

struct ChannelCounts {
    std::uint64_t published = 0;  // messages the gateway stored
    std::uint64_t received = 0;   // messages delivered by the gateway (copies dropped as duplicates excluded)
};

struct Broker::Impl : std::enable_shared_from_this<Impl> {
    Impl(boost::asio::io_context& io_context, BrokerConfig broker_config, LogSink sink);

    // broker.cpp
    Result<void> start(ReadyHandler handler);
    void stop();
    void log(std::string_view line) const;
    void report_ready(const Result<Ready>& outcome);
    void on_frame(const std::shared_ptr<ipc::Peer>& peer, ipc::Frame frame);
    void on_peer_closed(const std::shared_ptr<ipc::Peer>& peer);
    void on_state(session::State state, const Error* cause);
    bool on_server_key(const crypto::PublicKey& key);
    void on_authenticated(const protocol::Accepted& grant, const crypto::PublicKey& key);
    [[nodiscard]] nlohmann::json status() const;
    [[nodiscard]] std::uint32_t next_request_id();
    [[nodiscard]] bool connected() const;
    void answer(const Waiter& waiter, const nlohmann::json& fields) const { broker::answer(waiter, fields); }
    void fail(const Waiter& waiter, const ipc::WireError& error) const { broker::fail(waiter, error); }
    void check_stopped();
    void wait_for_signal();
    void reload();
    [[nodiscard]] bool reconnect_now(std::string_view asked_by);
    // While the gateway refuses this identity: the error local clients get, and its status object.
    [[nodiscard]] ipc::WireError refusal_error() const;
    [[nodiscard]] nlohmann::json refusal_json() const;
    void drop_live_subscribers(const ipc::WireError& why);

    // broker_outbound.cpp
    void handle_publish(const std::shared_ptr<ipc::Peer>& peer, const nlohmann::json& id, ipc::PublishRequest request,
                        Bytes payload);
    void handle_publish_batch(const std::shared_ptr<ipc::Peer>& peer, const nlohmann::json& id,
                              ipc::PublishBatchRequest request, Bytes payload);
    [[nodiscard]] std::optional<ipc::WireError> publish_refusal(const ipc::PublishRequest& request, std::size_t largest,
                                                                std::size_t count, std::uint64_t bytes) const;
    [[nodiscard]] store::OutboundMessage new_message(const ipc::PublishRequest& request, Bytes payload) const;
    void add_pending(PendingPublish pending);
    void enqueue_heartbeat();
    void pump();
    // The outbound flow's view of the queue and of the session.
    [[nodiscard]] StoredOutboundQueue outbound_queue() { return StoredOutboundQueue(*database, *queue); }
    struct SessionPublisher final : BatchPublisher {
        explicit SessionPublisher(Impl& owner) : impl(owner) {}
        [[nodiscard]] std::optional<std::uint32_t> publish(const protocol::SignedBatch& batch) override;
        Impl& impl;
    };
    // Signs a batch taken for sending; none when it is held back or cannot be signed (a dead letter).
    [[nodiscard]] std::optional<protocol::SignedBatch> seal(std::vector<store::OutboundMessage> batch,
                                                            const BatchInFlight& flight);
    void schedule_flush();
    void schedule_removal();
    // Acknowledged messages still on file are removed now, so what an operator (or a
    // heartbeat) is told counts only what still waits for the gateway.
    void settle_removals() {
        if (outbound_flow.has_unremoved()) flush_publishes();
    }
    void on_publish_result(std::uint32_t request_id, const Result<void>& outcome);
    void report_expired(std::vector<store::OutboundMessage>& expired);
    // Waiting messages past their expiry become dead letters now, connected or not.
    void expire_due();
    void fail_waiters(const Error& cause);
    void schedule_retry();
    void flush_publishes();
    // Syncs the log for the committed groups not answered yet (unsettled) and answers them, in
    // order. Run behind the session's send, and before any other answer to a local client (the
    // answers on one connection keep the order of its requests, PROTOCOL.md §8.3).
    void settle_publishes();
    // Answers each publish of a committed group (queued, its ids, or why not).
    void answer_publishes(std::vector<PendingPublish>& group, const std::optional<ipc::WireError>& failure);
    void dead_letter(const std::vector<protocol::MessageId>& ids, const Error& cause);
    [[nodiscard]] std::optional<ipc::WireError> check_capacity(std::size_t count, std::uint64_t bytes) const;

    // broker_channels.cpp
    // The gateway refused the batch as channel_disabled (or it was taken while its channel is
    // held): it waits, not counted as an attempt, and the channel is held.
    void hold_channel(BatchInFlight flight, const Error& cause, bool refused_by_gateway);
    // A batch taken for a channel still held waits again without being sent (true).
    [[nodiscard]] bool defer_if_held(const BatchInFlight& flight);
    void channel_accepted(const std::string& channel, std::size_t messages);
    void channel_received(const std::string& channel);
    [[nodiscard]] nlohmann::json channels_status() const;
    // A waiting message of a held channel says why it waits ("held": {"reason", "message"}).
    void note_held(nlohmann::json& message, const std::string& channel) const;

    // broker_queue_ops.cpp
    void handle_queue_op(const Waiter& waiter, const ipc::QueueRequest& request);
    void fail_dropped(const std::vector<protocol::MessageId>& ids);
    void report_given_up(const BatchInFlight& flight);
    void report_cursor_full(const std::string& name, std::uint64_t dropped_now);
    void schedule_cursor_full_report();
    [[nodiscard]] nlohmann::json queue_status() const;

    // broker_durable.cpp
    [[nodiscard]] Result<void> open_state();
    void handle_durable_subscribe(const std::shared_ptr<ipc::Peer>& peer, const Waiter& waiter,
                                  ipc::SubscribeRequest request);
    void handle_ack(const Waiter& waiter, const ipc::AckRequest& request);
    void handle_cursor_delete(const Waiter& waiter, const ipc::CursorDeleteRequest& request);
    void handle_cursor_list(const Waiter& waiter);
    // Stores a delivery's fresh messages in the inboxes of the durable cursors they match and
    // their ids in the delivered window, in one commit.
    [[nodiscard]] Result<void> store_delivery(const std::vector<protocol::Envelope>& fresh);
    void send_backlog(const std::string& name);
    void schedule_backlog(const std::string& name);
    void attach_durable(const PendingSubscribe& pending);
    void refuse_durable(const PendingSubscribe& pending, const ipc::WireError& error);
    void forget_durable(std::uint64_t peer_id);
    [[nodiscard]] std::vector<std::string> durable_patterns() const;

    // broker_inbound.cpp
    void handle_subscribe(const std::shared_ptr<ipc::Peer>& peer, const nlohmann::json& id,
                          ipc::SubscribeRequest request);
    // The subscription changes' view of the session and of the local subscribers.
    struct SubscriptionSessionView final : SubscriptionSession {
        explicit SubscriptionSessionView(Impl& owner) : impl(owner) {}
        [[nodiscard]] std::uint32_t set_subscriptions(const std::vector<std::string>& set) override;
        Impl& impl;
    };
    struct LocalSubscribers final : Subscribers {
        explicit LocalSubscribers(Impl& owner) : impl(owner) {}
        [[nodiscard]] std::vector<std::string> durable_patterns() const override { return impl.durable_patterns(); }
        void subscribed(const PendingSubscribe& pending) override;
        void denied(const PendingSubscribe& pending, const ipc::WireError& error) override;
        void refused(const PendingSubscribe& pending, const ipc::WireError& error) override;
        Impl& impl;
    };
    void advance_subscriptions();
    void on_subscribe_result(std::uint32_t request_id, const Result<void>& outcome);
    [[nodiscard]] Result<void> on_deliver(std::uint64_t sequence, protocol::SignedBatch batch);
    void on_rejected(std::uint64_t sequence, const Error& why);
    void forget_subscriber(std::uint64_t peer_id);
    // Sends the fresh messages of one delivery to the local subscribers of their channel.
    void fan_out(const std::vector<protocol::Envelope>& fresh);

    boost::asio::io_context& io;
    BrokerConfig config;
    LogSink sink;
    std::unique_ptr<session::ClientSession> session;
    std::unique_ptr<ipc::Server> server;
    std::shared_ptr<store::Database> database;
    std::unique_ptr<store::SqliteOutboundQueue> queue;
    std::unique_ptr<store::DeliveredIds> delivered;
    bool flush_posted = false;
    // Committed groups of publishes whose answers wait for the log's sync (settle_publishes).
    struct UnsettledPublishes {
        std::vector<PendingPublish> publishes;
        std::optional<ipc::WireError> failure;  // they could not be stored
        std::size_t messages = 0;
        bool sync_owed = false;
    };
    std::deque<UnsettledPublishes> unsettled;
    // Durable cursors, their inboxes and the clients attached to them (made with the state file).
    std::unique_ptr<DurableCursors> durable;

    // Local clients by peer id.
    std::unordered_map<std::uint64_t, std::weak_ptr<ipc::Peer>> peers;
    std::unordered_set<std::uint64_t> batch_subscribers;  // peers that take "messages" events
    std::unordered_map<std::uint64_t, bool> greeted;

    // Subscriptions: confirmed by the gateway, waiting, and the change in flight.
    SubscriptionChanges subscription_changes;

    // Outbound: publishes to commit, batches given to the session, tools waiting for their puback.
    OutboundFlow outbound_flow;
    std::uint64_t next_sequence = 0;
    bool retry_scheduled = false;
    std::map<std::string, ChannelHold, std::less<>> held_channels;
    std::map<std::string, ChannelCounts, std::less<>> channel_counts;

    // The session as last seen.
    std::optional<protocol::Accepted> grant;
    std::optional<channel::AccessPolicy> policy;
    std::optional<crypto::PublicKey> server_key;
    std::optional<Error> last_error;
    std::optional<Error> store_error;  // delivered messages cannot be stored (until one batch can)
    std::uint64_t store_error_since_ms = 0;
    std::uint64_t last_heartbeat_ms = 0;
    std::uint64_t disconnected_since_ms = 0;  // when the last session was lost; 0: never lost
    session::State state = session::State::stopped;

    // Start-up and shutdown.
    ReadyHandler on_ready;
    bool ready_reported = false;
    std::optional<Error> startup_failure;
    bool stopping = false;
    std::chrono::steady_clock::time_point stop_started{};
    boost::asio::steady_timer ready_timer;
    boost::asio::steady_timer retry_timer;
    boost::asio::steady_timer removal_timer;
    bool removal_scheduled = false;
    boost::asio::steady_timer stop_timer;
    boost::asio::signal_set signals;
    // "inbox full" of a durable subscription: one line per cursor per minute, drops counted.
    LogThrottle cursor_full_lines{std::chrono::minutes(1)};
    boost::asio::steady_timer cursor_full_timer;
    bool cursor_full_timer_scheduled = false;

    // Counters for status.
    std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
    std::uint64_t published_local = 0;  // messages accepted from local tools
    std::uint64_t acked = 0;            // messages the gateway stored
    std::uint64_t dropped = 0;          // refused or expired (dead letters)
    std::uint64_t delivered_local = 0;  // message copies handed to local subscribers
    std::uint64_t duplicates = 0;       // deliveries suppressed by the dedup window
    std::uint32_t request_counter = 0;
};

}  // namespace aegis::broker
