#pragma once
// The gateway's state in one SQLite file (gateway.db in --state-dir), the first implementation
// of GatewayState: every completion runs before the call returns, but that of a commit that must
// survive power loss once sync_in_background() is on: its log sync runs on a thread of its own
// (LogSyncer) and its completion is posted back once the sync is done. A mirror of the per-identity
// rows is kept in memory for routing; the inbox rows are read from the file, but for the newest
// ones, kept in memory until acknowledged (recent_).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channel/pattern_index.h"
#include "store/gateway_state.h"

namespace aegis::store {

class Database;
class LogSyncer;

// "AEGG": PRAGMA application_id of the gateway's file (the broker's queue is "AEGQ").
inline constexpr std::int32_t kGatewayApplicationId = 0x41454747;
inline constexpr std::int64_t kGatewaySchemaVersion = 1;

// One identity's row, mirrored in memory.
struct IdentityState {
    std::string id;
    std::vector<std::string> patterns;
    GatewayToken token{};             // all zero: none issued
    std::uint64_t token_used_ms = 0;  // last handshake or disconnect with it
    std::uint64_t last_sequence = 0;  // highest inbox sequence handed out
    std::uint64_t acknowledged = 0;   // highest deliver_ack
    std::uint64_t pending = 0;        // messages waiting in the inbox
};

class SqliteGatewayStore final : public GatewayState {
public:
    // Opens or creates FILE. A foreign SQLite file, a corrupt file (Database::check_integrity) or
    // a newer schema fails with ExitCode::bad_input.
    [[nodiscard]] static Result<std::unique_ptr<SqliteGatewayStore>> open(const std::filesystem::path& file,
                                                                          GatewayLimits limits);

    void open_session(const crypto::PublicKey& key, const std::string& id, const GatewayToken& presented,
                      std::uint64_t now_ms, Completion<OpenedSession> done) override;
    void session_closed(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                        std::uint64_t now_ms) override;
    void save_subscriptions(const crypto::PublicKey& key, const std::string& id,
                            const std::vector<std::string>& patterns, Completion<void> done) override;
    [[nodiscard]] std::vector<Subscriber> subscribers(std::string_view channel) const override;
    // One transaction: the remembered session tokens, then the acknowledgements, then the appends.
    // A failure re-reads the mirror from the file; the tokens stay remembered for the next commit.
    void commit(StateCommit commit, Completion<CommitOutcome> done) override;
    // Nothing is read when nothing past AFTER was handed out; what was appended since the last
    // acknowledgement comes from memory (recent_), the rest from the file.
    void read_after(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                    Completion<std::vector<StoredBatch>> done) override;
    void expire(std::uint64_t now_ms, Completion<std::map<std::string, std::uint64_t>> done) override;
    [[nodiscard]] InboxTotals totals() const override;
    [[nodiscard]] std::map<crypto::PublicKey, IdentitySummary> identities() const override;
    // Reads the file's schema version: a file that cannot be read fails.
    void probe(Completion<void> done) override;
    // Shutting down: the log is synced now and every commit still waiting for its sync is
    // answered before this returns (its pubacks go out ahead of the goodbye).
    void close() override;

    // From now on a commit that must survive power loss is written without waiting for the
    // device; the log is synced on a thread of the store's own and `post` runs the commit's
    // completion where the caller wants it (the gateway's event loop). Meanwhile what was
    // committed is visible (and may be delivered); the completion says whether it is on disk.
    using Post = std::function<void(std::function<void()>)>;
    [[nodiscard]] Result<void> sync_in_background(Post post);

    // The identity's row as mirrored, or nothing (for tests and diagnostics).
    [[nodiscard]] std::optional<IdentityState> identity(const crypto::PublicKey& key) const;

    // Bounds of the batches kept in memory after an append, per inbox and in all.
    static constexpr std::size_t kRecentPerInbox = 64;
    static constexpr std::uint64_t kRecentBytes = 8 * 1024 * 1024;

    SqliteGatewayStore(const SqliteGatewayStore&) = delete;
    SqliteGatewayStore& operator=(const SqliteGatewayStore&) = delete;
    ~SqliteGatewayStore() override;

private:
    SqliteGatewayStore(std::unique_ptr<Database> database, GatewayLimits limits);
    [[nodiscard]] Result<void> reload();
    [[nodiscard]] Result<void> store(const StateCommit& commit, CommitOutcome& outcome);
    [[nodiscard]] Result<void> ensure_row(const crypto::PublicKey& key, const std::string& id);
    [[nodiscard]] Result<void> save_tokens();
    void remember_token(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                        std::uint64_t now_ms);
    [[nodiscard]] bool token_valid(const crypto::PublicKey& key, const GatewayToken& token, std::uint64_t now_ms) const;
    [[nodiscard]] Result<void> acknowledge(const crypto::PublicKey& key, std::uint64_t sequence);
    // Appends to the identity's inbox (it must have a row): the older messages dropped to stay within max_messages.
    [[nodiscard]] Result<std::uint64_t> append(const crypto::PublicKey& key, const std::string& channel, ByteView batch,
                                               std::uint64_t messages, std::uint64_t now_ms);
    [[nodiscard]] Result<std::uint64_t> trim(const crypto::PublicKey& key);
    [[nodiscard]] Result<std::vector<StoredBatch>> read(const crypto::PublicKey& key, std::uint64_t after,
                                                        std::size_t limit) const;
    [[nodiscard]] Result<std::map<std::string, std::uint64_t>> expire_before(std::uint64_t now_ms);
    void remember_recent(const crypto::PublicKey& key, StoredBatch batch);
    void forget_recent(const crypto::PublicKey& key, std::uint64_t through_sequence);
    void forget_all_recent();
    // Answers the commits waiting for their sync, up to `through`, with `synced`'s outcome.
    void answer_synced(std::uint64_t through, const Result<void>& synced);

    std::unique_ptr<Database> database_;
    Post post_;                          // set by sync_in_background
    std::unique_ptr<LogSyncer> syncer_;  // after database_: stopped (its syncs done) before it closes
    // Commits written and waiting for their sync, oldest first, numbered; answered in order.
    struct Unsynced {
        std::uint64_t number = 0;
        Completion<CommitOutcome> done;
        CommitOutcome outcome;
    };
    std::deque<Unsynced> unsynced_;
    std::uint64_t commits_ = 0;
    // What a posted answer holds of the store: gone once the store is (the loop may outlive it).
    std::shared_ptr<SqliteGatewayStore*> self_ = std::make_shared<SqliteGatewayStore*>(this);
    GatewayLimits limits_;
    std::map<crypto::PublicKey, IdentityState> identities_;
    struct UnsavedToken {
        std::string id;
        GatewayToken token{};
        std::uint64_t used_ms = 0;
    };
    std::map<crypto::PublicKey, UnsavedToken> unsaved_tokens_;
    channel::PatternIndex<crypto::PublicKey> routes_;  // identities_' patterns, for routing
    // The newest entries of each inbox, consecutive, as they are on file: a session delivers what
    // was just appended without reading it back. Only inboxes with entries are here.
    std::map<crypto::PublicKey, std::deque<StoredBatch>> recent_;
    std::uint64_t recent_bytes_ = 0;  // their batches' bytes, bounded by kRecentBytes
};

}  // namespace aegis::store
