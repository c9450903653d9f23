#pragma once
// The gateway's state file (gateway.db in --state-dir): per authorized identity, the
// subscription set it last had, its session token and its inbox of routed batches it has not
// acknowledged. Inbox sequence numbers are per identity and never go back, so they double as
// the deliver sequence across reconnects and restarts. A mirror of the per-identity rows is
// kept in memory for routing; the inbox rows are read from the file, but for the newest ones,
// kept in memory until acknowledged (recent_).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "channel/pattern_index.h"
#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"
#include "store/sqlite.h"

namespace aegis::store {

// "AEGG": PRAGMA application_id of the gateway's file (the broker's queue is "AEGQ").
inline constexpr std::int32_t kGatewayApplicationId = 0x41454747;
inline constexpr std::int64_t kGatewaySchemaVersion = 1;

using GatewayToken = std::array<std::uint8_t, 32>;

struct GatewayLimits {
    std::uint64_t max_messages = 100'000;                // per identity; past it the oldest are dropped
    std::uint64_t max_age_ms = 7ULL * 24 * 3600 * 1000;  // inbox entries and session tokens expire
};

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

struct StoredBatch {
    std::uint64_t sequence = 0;
    std::string channel;
    Bytes batch;
    std::uint64_t messages = 0;
    std::uint64_t stored_ms = 0;
};

struct AppendOutcome {
    std::uint64_t sequence = 0;
    std::uint64_t dropped = 0;  // older messages removed to stay within max_messages
};

class GatewayStore {
public:
    // Opens or creates FILE. A foreign SQLite file, a corrupt file (Database::check_integrity) or
    // a newer schema fails with ExitCode::bad_input.
    [[nodiscard]] static Result<std::unique_ptr<GatewayStore>> open(const std::filesystem::path& file,
                                                                    GatewayLimits limits);

    [[nodiscard]] const std::map<crypto::PublicKey, IdentityState>& identities() const { return identities_; }
    [[nodiscard]] const IdentityState* find(const crypto::PublicKey& key) const;
    // The identities whose stored patterns may match CHANNEL (channel::PatternIndex): a superset
    // of those that match, found without walking every identity.
    [[nodiscard]] std::vector<crypto::PublicKey> routing_candidates(std::string_view channel) const {
        return routes_.candidates(channel);
    }
    [[nodiscard]] const GatewayLimits& limits() const { return limits_; }

    // Writes below may be grouped in one transaction (begin ... commit); alone each commits itself.
    [[nodiscard]] Result<Transaction> begin(Durability durability = Durability::power_loss);

    // Creates the identity's row when missing and records its id and subscription set.
    [[nodiscard]] Result<void> save_patterns(const crypto::PublicKey& key, const std::string& id,
                                             const std::vector<std::string>& patterns);
    // Records the identity's session token (and when it was used) in memory at once, creating
    // the identity if new; the file gets it from save_tokens(), in the gateway's next group
    // commit. A token lost with the process only turns the next resumption into a fresh session
    // (the inbox and its acknowledged position are stored apart).
    void remember_token(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                        std::uint64_t now_ms);
    [[nodiscard]] bool has_unsaved_tokens() const { return !unsaved_tokens_.empty(); }
    // Writes the remembered tokens, inside the caller's transaction. They stay remembered (and
    // reload() keeps them) until tokens_saved() says that transaction committed.
    [[nodiscard]] Result<void> save_tokens();
    void tokens_saved() { unsaved_tokens_.clear(); }
    // True when TOKEN is the identity's and was used within max_age.
    [[nodiscard]] bool token_valid(const crypto::PublicKey& key, const GatewayToken& token, std::uint64_t now_ms) const;
    // Appends a batch to the identity's inbox (the identity must have a row).
    [[nodiscard]] Result<AppendOutcome> append(const crypto::PublicKey& key, const std::string& channel, ByteView batch,
                                               std::uint64_t messages, std::uint64_t now_ms);
    // Everything up to SEQUENCE was received: deleted. Never goes back.
    [[nodiscard]] Result<void> acknowledge(const crypto::PublicKey& key, std::uint64_t sequence);
    // Up to LIMIT inbox entries after AFTER, in order. Nothing is read when nothing past AFTER
    // was handed out; what was appended since the last acknowledgement comes from memory
    // (recent_), the rest from the file.
    [[nodiscard]] Result<std::vector<StoredBatch>> read_after(const crypto::PublicKey& key, std::uint64_t after,
                                                              std::size_t limit) const;
    // Deletes entries stored before now - max_age; returns the messages removed per identity id.
    [[nodiscard]] Result<std::map<std::string, std::uint64_t>> expire(std::uint64_t now_ms);
    // Re-reads the in-memory mirror (after a failed transaction); forgets the recent batches.
    [[nodiscard]] Result<void> reload();

    // Bounds of the batches kept in memory after an append, per inbox and in all.
    static constexpr std::size_t kRecentPerInbox = 64;
    static constexpr std::uint64_t kRecentBytes = 8 * 1024 * 1024;

    GatewayStore(const GatewayStore&) = delete;
    GatewayStore& operator=(const GatewayStore&) = delete;
    ~GatewayStore();

private:
    GatewayStore(std::unique_ptr<Database> database, GatewayLimits limits);
    [[nodiscard]] Result<void> ensure_row(const crypto::PublicKey& key, const std::string& id);
    [[nodiscard]] Result<std::uint64_t> trim(const crypto::PublicKey& key);
    void remember_recent(const crypto::PublicKey& key, StoredBatch batch);
    void forget_recent(const crypto::PublicKey& key, std::uint64_t through_sequence);
    void forget_all_recent();

    std::unique_ptr<Database> database_;
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
