#pragma once
// The broker's durable outbound queue, on SQLite (state_database.h): messages accepted from
// local tools (outbound_message.h), critical first, then in arrival order. A push is
// on disk (fsync'd) before it returns; messages taken for sending stay stored until
// acknowledged; released ones come back after an exponential backoff with full jitter;
// expired and refused ones become dead letters with their reason.
//
// Which stored messages are in flight is kept in memory only: taking a batch reads the file
// and writes nothing (a row is written when pushed and deleted when acknowledged, and touched
// in between only by a release, an expiry or a refusal). A broker that dies forgets what was
// in flight, so everything not acknowledged is sent again after a restart, as it must be.
// Taking reads on from a cursor per priority, so messages already in flight are not read
// again; a release, a retry or a reused row id moves the cursor back.
//
// The operator API (list, get, retry, remove, purge, stats) is meant for the broker's own
// instance (aegis-queue talks to the broker): waiting()/in_flight() and the cursors live in
// memory, so another process editing the file behind an open queue makes them stale.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "protocol/message_id_hash.h"
#include "store/outbound_message.h"

namespace aegis::store {

class Database;

struct QueueLimits {
    std::size_t max_messages = 1'000'000;             // waiting + in flight
    std::uint64_t max_bytes = 1024ull * 1024 * 1024;  // payload bytes waiting + in flight
    std::size_t max_dead_letters = 100'000;           // past this the oldest dead letters go
};

struct RetryBackoff {
    std::uint64_t base_ms = 1'000;   // the first retry waits up to this
    std::uint64_t max_ms = 300'000;  // no retry waits longer than this
    std::uint32_t max_attempts = 0;  // released this many times: dead letter; 0 = never
};

struct QueueOptions {
    RetryBackoff backoff;
    // A delay in [0, cap]; uniformly random unless a test fixes it.
    std::function<std::uint64_t(std::uint64_t cap)> jitter;
};

enum class MessageState { waiting, in_flight, dead };

[[nodiscard]] std::string_view to_string(MessageState state);

// One row as the operator sees it (no payload).
struct QueueEntry {
    protocol::MessageId id{};
    std::string channel;
    protocol::Priority priority = protocol::Priority::normal;
    protocol::Kind kind = protocol::Kind::event;
    MessageState state = MessageState::waiting;
    std::uint32_t attempts = 0;
    std::uint64_t timestamp_ms = 0;     // when the sender made it: its age
    std::uint64_t expires_ms = 0;       // 0: never
    std::uint64_t next_attempt_ms = 0;  // not sent before this (0: at once)
    std::size_t payload_bytes = 0;
    std::string dead_reason;  // dead letters only
    std::uint64_t dead_at_ms = 0;
};

struct StoredMessage {
    QueueEntry entry;
    OutboundMessage message;
};

struct QueueStats {
    std::size_t waiting = 0;
    std::size_t in_flight = 0;
    std::size_t dead = 0;
    std::uint64_t bytes = 0;  // payload bytes waiting + in flight
    std::uint64_t dead_bytes = 0;
    std::uint64_t oldest_waiting_ms = 0;  // timestamp of the oldest waiting message; 0 if none
    std::uint64_t file_bytes = 0;         // the database file, free pages included
};

class SqliteOutboundQueue final {
public:
    // Opens (or creates) the queue in `file`; in-flight messages of a previous run wait again.
    [[nodiscard]] static Result<std::unique_ptr<SqliteOutboundQueue>> open(const std::filesystem::path& file,
                                                                           QueueLimits limits,
                                                                           QueueOptions options = {});
    // The same on a state database shared with DeliveredIds and DurableInbox.
    [[nodiscard]] static Result<std::unique_ptr<SqliteOutboundQueue>> open(std::shared_ptr<Database> database,
                                                                           QueueLimits limits,
                                                                           QueueOptions options = {});
    ~SqliteOutboundQueue();

    // ---- sending ----
    // Stored (fsync'd unless every message is a request or reply) before this returns.
    [[nodiscard]] Result<void> push(OutboundMessage message);
    // All stored in one transaction (one fsync), or none: the group commit for aegis-send -l.
    // A message whose id is already stored is not stored twice.
    [[nodiscard]] Result<void> push_many(const std::vector<OutboundMessage>& messages);
    // The next batch to send, marked in flight: the highest-priority waiting message that is due
    // and the due messages right behind it, while they share its channel and priority. Messages
    // whose expiry has passed become dead letters ("expired") and are appended to `expired`.
    [[nodiscard]] Result<std::vector<OutboundMessage>> take_batch(const BatchLimits& limits, std::uint64_t now_ms,
                                                                  std::vector<OutboundMessage>& expired);
    // Stored by the gateway (or removed by the operator): removed for good.
    [[nodiscard]] Result<void> acknowledge(const std::vector<protocol::MessageId>& ids);
    // Refused for a reason a retry cannot fix: dead letters with that reason.
    [[nodiscard]] Result<void> dead_letter(const std::vector<protocol::MessageId>& ids, std::string_view reason,
                                           std::uint64_t now_ms);
    // In flight, not known to be stored (a retryable refusal): waiting again after a backoff,
    // attempts + 1, next attempt = now + jitter(min(max, base * 2^(attempts-1))).
    // `last_reason`: why they were refused, for the dead letter of one that reaches max_attempts.
    [[nodiscard]] Result<void> release(const std::vector<protocol::MessageId>& ids, std::uint64_t now_ms,
                                       std::string_view last_reason = {});
    // Waiting again, not sent before `until_ms`, attempts unchanged: held back for a reason that
    // is not the message's (a channel disabled at the gateway), so no attempt limit counts it.
    [[nodiscard]] Result<void> defer(const std::vector<protocol::MessageId>& ids, std::uint64_t until_ms);
    // The channel's waiting messages are due now (the hold is over), their attempts unchanged.
    [[nodiscard]] Result<void> undefer_channel(const std::string& channel);
    // Everything in flight waits again at once, without backoff: the session was lost, the
    // messages were not refused. Nothing is written.
    void release_in_flight();
    // Waiting messages (not in flight) whose expiry has passed become dead letters ("expired")
    // now, as the next take would make them, so the operator sees them as they are while no
    // session takes anything. Appended to `expired` without their payload.
    [[nodiscard]] Result<void> expire_due(std::uint64_t now_ms, std::vector<OutboundMessage>& expired);
    // Reads the counters again from the file and reads it from the start at the next take,
    // after a transaction around the methods above (Database::begin) rolled back. Take no
    // batch inside such a transaction: what it marks in flight is not rolled back.
    [[nodiscard]] Result<void> reload_counters() { return load_counters(); }

    [[nodiscard]] std::size_t waiting() const { return waiting_; }
    [[nodiscard]] std::size_t in_flight() const { return in_flight_.size(); }
    [[nodiscard]] std::size_t dead() const { return dead_; }
    [[nodiscard]] std::uint64_t live_bytes() const { return live_bytes_; }
    [[nodiscard]] const QueueLimits& limits() const { return limits_; }

    // ---- operator API (aegis-queue) ----
    // In send order (priority, then arrival); `state` empty: every state. limit 0: no limit.
    [[nodiscard]] Result<std::vector<QueueEntry>> list(std::optional<MessageState> state, std::size_t limit) const;
    [[nodiscard]] Result<std::optional<StoredMessage>> get(const protocol::MessageId& id) const;
    // A dead or waiting message waits again, due now, attempts reset. In flight: refused.
    // One whose expiry has passed by `now_ms` is refused too (it would only expire again),
    // unless `fresh_ttl_ms` (non-zero) gives it a new expiry, `now_ms` + `fresh_ttl_ms`.
    [[nodiscard]] Result<void> retry(const protocol::MessageId& id, std::uint64_t now_ms = 0,
                                     std::uint64_t fresh_ttl_ms = 0);
    struct Retried {
        std::size_t count = 0;    // waiting again
        std::size_t expired = 0;  // left dead: their expiry has passed (no fresh TTL given)
    };
    // Every dead letter waits again, except those expired by `now_ms` unless `fresh_ttl_ms`
    // gives them a new expiry.
    [[nodiscard]] Result<Retried> retry_dead(std::uint64_t now_ms, std::uint64_t fresh_ttl_ms = 0);
    [[nodiscard]] Result<void> remove(const protocol::MessageId& id);
    [[nodiscard]] Result<std::size_t> purge_dead();
    [[nodiscard]] Result<std::size_t> purge_all();
    [[nodiscard]] Result<QueueStats> stats() const;

private:
    static constexpr std::size_t kPriorities = static_cast<std::size_t>(protocol::Priority::low) + 1;
    static constexpr std::int64_t kNoRow = std::numeric_limits<std::int64_t>::max();

    // A stored message taken for sending (its row says 'waiting').
    struct InFlight {
        std::int64_t seq = 0;
        protocol::Priority priority = protocol::Priority::normal;
        std::uint64_t payload_bytes = 0;
    };
    // How far takes have read the waiting rows of one priority. Every row up to `cursor` that
    // is not in flight waits out a backoff: the lowest of them is `deferred_from`, the first
    // due at `deferred_due_ms`; from then on the rows are read again from there. `maybe_more` is
    // false once a read found no row past the cursor, until a push, a rewind or a due backoff:
    // a take then skips that priority without a query.
    struct Scan {
        std::int64_t cursor = 0;
        std::int64_t deferred_from = kNoRow;
        std::uint64_t deferred_due_ms = std::numeric_limits<std::uint64_t>::max();
        bool maybe_more = true;
    };

    SqliteOutboundQueue(std::shared_ptr<Database> database, QueueLimits limits, QueueOptions options);
    [[nodiscard]] Result<void> load_counters();
    // Rows from `seq` on are read again by the next take.
    void rewind(protocol::Priority priority, std::int64_t seq);
    void rewind_all();
    // A listed row's state: in flight is stored as waiting.
    [[nodiscard]] MessageState state_of(const QueueEntry& entry) const;
    [[nodiscard]] Result<void> prune_dead_letters();
    [[nodiscard]] std::uint64_t retry_delay(std::uint32_t attempts) const;

    std::shared_ptr<Database> database_;
    QueueLimits limits_;
    QueueOptions options_;
    std::size_t waiting_ = 0;  // stored, not in flight, not dead
    std::unordered_map<protocol::MessageId, InFlight, protocol::MessageIdHash> in_flight_;
    std::array<Scan, kPriorities> scans_{};
    std::size_t dead_ = 0;
    std::uint64_t live_bytes_ = 0;
    // No waiting message expires before this (0: not known), so expire_due() reads the file
    // only when one may have: a status request does not scan a long queue each time.
    std::uint64_t next_expiry_ms_ = 0;
};

}  // namespace aegis::store
