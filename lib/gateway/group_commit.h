#pragma once
// Group commit: every publish and deliver_ack of one event-loop turn goes to the store in one
// commit, then the publishers are answered (puback, or an error) and the recipients' sessions
// woken. Session tokens and acks alone wait a little for a commit to ride with (lazy commit).
// Stored messages past --inbox-max-age are pruned on a timer.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"
#include "gateway/metrics.h"
#include "store/gateway_state.h"

namespace aegis::gateway {

class Backplane;
class FullInboxLog;
class GatewaySession;
class Routing;

struct GroupCommitLimits {
    std::chrono::seconds inbox_max_age{7 * 24 * 3600};
    std::uint64_t inbox_max_messages = 100'000;
    std::chrono::milliseconds drop_log_interval{60'000};
};

class GroupCommit : public std::enable_shared_from_this<GroupCommit> {
public:
    GroupCommit(boost::asio::io_context& io, store::GatewayState& state, const Routing& routing, Backplane& backplane,
                GatewayMetrics& counters, GroupCommitLimits limits, std::function<void(std::string_view)> log);

    // Queues a verified batch for this turn's commit; `from` is told (publish_stored) once it is
    // committed. `fsync`: false when every message is a request or reply. `request`: a batch no
    // identity would receive is refused with no_responders.
    void publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                 Bytes batch, std::size_t messages, bool fsync, bool request);
    // deliver_ack: stored with the next commit (losing it only means a redelivery).
    void acknowledge(const crypto::PublicKey& key, std::uint64_t sequence);
    // The identity's deliver_ack still waiting for a commit, or 0.
    [[nodiscard]] std::uint64_t waiting_ack(const crypto::PublicKey& key) const;
    // A session opened or closed: its token goes to the store with a commit soon (at once when stopped).
    void token_changed();

    // Prunes what expired and keeps doing so on a timer.
    void start();
    // Shutting down: no more timers; what was received is stored now.
    void stop();

private:
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

    void post_flush();
    void flush();
    void answer(const Result<store::CommitOutcome>& committed, const std::vector<PendingPublish>& publishes,
                const std::vector<crypto::PublicKey>& touched, std::size_t acks, std::uint64_t tokens_through);
    void schedule_lazy_commit();
    [[nodiscard]] bool tokens_waiting() const { return token_changes_ != tokens_committed_; }
    void commit_tokens_now();
    void schedule_expiry();
    void expire();

    boost::asio::io_context& io_;
    store::GatewayState& state_;
    const Routing& routing_;
    Backplane& backplane_;
    GatewayMetrics& counters_;
    GroupCommitLimits limits_;
    std::function<void(std::string_view)> log_;
    std::shared_ptr<FullInboxLog> full_;
    std::vector<PendingPublish> pending_publishes_;
    std::map<crypto::PublicKey, std::uint64_t> pending_acks_;
    std::uint64_t token_changes_ = 0;     // sessions opened or closed
    std::uint64_t tokens_committed_ = 0;  // of them, the ones a commit stored
    bool flush_posted_ = false;
    boost::asio::steady_timer lazy_timer_;
    bool lazy_scheduled_ = false;
    boost::asio::steady_timer expiry_timer_;
    bool stopped_ = false;
};

}  // namespace aegis::gateway
