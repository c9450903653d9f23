#pragma once
// The gateway's state in Redis, shared by several gateways (man aegis-gateway(1), CLUSTER): the
// second implementation of GatewayState. The data model and every mutation are in the function
// library store/redis/aegis.lua, loaded at start; completions run when Redis answers.
//
// Routing is synchronous (subscribers()): each gateway keeps a view of the subscription sets,
// versioned, kept current through a pub/sub hint. A commit carries the version it was routed
// with; the commit function refuses it, storing nothing, when the sets changed since, and the
// store catches up and routes again (StateCommit::route). So a subscription saved (and
// acknowledged) through one gateway is routed by every gateway's next commit, hint or no hint.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channel/pattern_index.h"
#include "store/gateway_state.h"
#include "store/redis/connection.h"
#include "store/redis/sentinel.h"

namespace aegis::store::redis {

struct RedisStoreOptions {
    Endpoint endpoint;  // with sentinels: its database only
    GatewayLimits limits;
    std::chrono::milliseconds command_timeout{2'000};
    // Above 0: a commit succeeds only once WAIT says this many replicas have it (within wait_timeout).
    std::uint64_t wait_replicas = 0;
    std::chrono::milliseconds wait_timeout{500};
    // The master these sentinels name, followed through failovers, instead of `endpoint`'s host.
    std::optional<SentinelOptions> sentinel;
    // One line per change of master.
    std::function<void(std::string_view)> log;
};

class RedisGatewayState final : public GatewayState {
public:
    // How long the start asks the sentinels for a master before it gives up.
    static constexpr std::chrono::milliseconds kFindMasterFor{5'000};

    // Checks the server and loads the function library, waiting for the answers (a private event
    // loop), then serves on `io`. With sentinels, the master is the one they name whose ROLE says
    // so, asked for up to kFindMasterFor. A server that cannot be reached fails (ExitCode::failure); one
    // whose maxmemory-policy may evict keys without an expiry is refused (bad_input). `warn` gets
    // one line for each doubt about durability (appendfsync not always).
    [[nodiscard]] static Result<std::unique_ptr<RedisGatewayState>> open(
        boost::asio::io_context& io, const RedisStoreOptions& options,
        const std::function<void(std::string_view)>& warn);

    void open_session(const crypto::PublicKey& key, const std::string& id, const GatewayToken& presented,
                      std::uint64_t now_ms, Completion<OpenedSession> done) override;
    void session_closed(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                        std::uint64_t now_ms) override;
    void save_subscriptions(const crypto::PublicKey& key, const std::string& id,
                            const std::vector<std::string>& patterns, Completion<void> done) override;
    [[nodiscard]] std::vector<Subscriber> subscribers(std::string_view channel) const override;
    void commit(StateCommit commit, Completion<CommitOutcome> done) override;
    void read_after(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                    Completion<std::vector<StoredBatch>> done) override;
    // Also refreshes what totals() and identities() answer from.
    void expire(std::uint64_t now_ms, Completion<std::map<std::string, std::uint64_t>> done) override;
    // As of the last expire() (or the start): read when asked, never waited for.
    [[nodiscard]] InboxTotals totals() const override;
    [[nodiscard]] std::map<crypto::PublicKey, IdentitySummary> identities() const override;
    // The connection's state now: up, and no command failed since it last came up.
    void probe(Completion<void> done) override;
    void watch(StoreEvents events) override;
    // A hint on the cluster's reload channel, with this gateway's node name.
    void announce_reload() override;
    void close() override;

    // This gateway's name among those sharing the store (random, per process).
    [[nodiscard]] const std::string& node() const { return node_; }
    // The Redis it uses now (with sentinels: the master they name).
    [[nodiscard]] const Endpoint& endpoint() const { return options_.endpoint; }
    // The version of the subscription sets this gateway routes by.
    [[nodiscard]] std::uint64_t routing_version() const { return view_version_; }

    RedisGatewayState(const RedisGatewayState&) = delete;
    RedisGatewayState& operator=(const RedisGatewayState&) = delete;
    ~RedisGatewayState() override;

    struct PendingCommit;

private:
    RedisGatewayState(boost::asio::io_context& io, const RedisStoreOptions& options);
    void start();
    void send_commit(const std::shared_ptr<PendingCommit>& pending);
    void catch_up(std::function<void(Result<void>)> then);
    [[nodiscard]] Result<void> apply_sets(const Reply& reply);
    void on_message(const std::string& channel, const std::string& payload);
    void refresh_summary();
    void move_to(const Endpoint& master);
    [[nodiscard]] std::string channel(std::string_view name) const;

    RedisStoreOptions options_;
    std::string node_;
    std::unique_ptr<Connection> commands_;
    std::unique_ptr<Connection> messages_;
    std::unique_ptr<Sentinel> sentinel_;
    StoreEvents events_;
    struct Set {
        std::string id;
        std::vector<std::string> patterns;
    };
    std::map<crypto::PublicKey, Set> sets_;
    channel::PatternIndex<crypto::PublicKey> routes_;
    std::uint64_t view_version_ = 0;
    bool catching_up_ = false;
    std::vector<std::function<void(Result<void>)>> after_catch_up_;
    std::map<crypto::PublicKey, std::uint64_t> epochs_;  // the sessions opened here, by their epoch
    std::map<crypto::PublicKey, IdentitySummary> summary_;
    bool healthy_ = false;
    std::string unhealthy_why_ = "not connected yet";
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aegis::store::redis
