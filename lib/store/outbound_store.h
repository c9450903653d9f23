#pragma once
// The broker's durable outbound queue, on SQLite (state_database.h): messages accepted from
// local tools (outbound_message.h), critical first, then in arrival order. A push is
// on disk (fsync'd) before it returns; messages taken for sending stay stored until
// acknowledged; released ones come back after an exponential backoff with full jitter;
// expired and refused ones become dead letters with their reason.
//
// One row holds the messages of one publish (consecutive messages pushed together to one
// channel at one priority, up to kMaxRowMessages): one insert per publish, one write per
// acknowledged batch. The queue keeps an index of every queued message in memory (where it is,
// its state, its size and expiry, no payload), which decides the send order and answers the
// operator's single-message operations; payloads are read from the file when taken. What is in
// flight is kept in memory only: a broker that dies forgets it, so everything not acknowledged
// is sent again after a restart, as it must be. An acknowledged message is marked done in its
// row, and the row goes when all of its messages are done. Backoffs are rows of their own
// (retries), dead letters one row per message (dead_letters): both are the rare path.
//
// The operator API (list, get, retry, remove, purge, stats) is meant for the broker's own
// instance (aegis-queue talks to the broker): the index lives in memory, so another process
// editing the file behind an open queue makes it stale.

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
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
    SqliteOutboundQueue(const SqliteOutboundQueue&) = delete;  // its index refers to it
    SqliteOutboundQueue& operator=(const SqliteOutboundQueue&) = delete;

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

    // Messages a row holds at most (one take reads one row when publishes are this large).
    static constexpr std::size_t kMaxRowMessages = 256;
    static constexpr std::size_t kMaxRowBytes = 4 * 1024 * 1024;  // payload bytes, but a larger message goes alone

private:
    static constexpr std::size_t kPriorities = static_cast<std::size_t>(protocol::Priority::low) + 1;

    enum class SlotState : std::uint8_t { waiting, in_flight, done };
    // One message of a row as the index keeps it, in 24 bytes: its id, sizes and state; no
    // payload, headers or expiry (the payload and headers stay in the file, the expiry in its row).
    struct Slot {
        protocol::MessageId id{};
        std::uint32_t wire_bytes = 0;  // with its headers (protocol::encoded_message_bytes)
        std::uint32_t payload_bytes : 30 = 0;
        std::uint32_t state_bits : 2 = 0;
        [[nodiscard]] SlotState state() const { return static_cast<SlotState>(state_bits); }
        void set_state(SlotState state) { state_bits = static_cast<std::uint32_t>(state) & 3u; }
    };
    static_assert(sizeof(Slot) == 24);
    static_assert(protocol::kMaxPayloadBytes < (std::size_t{1} << 30), "a payload size fits Slot::payload_bytes");
    struct Row {
        std::string channel;
        protocol::Priority priority = protocol::Priority::normal;
        std::vector<Slot> slots;
        // The expiry of each slot (0: never); none while no message of the row expires.
        std::unique_ptr<std::uint64_t[]> expiries;
        std::size_t live = 0;             // not done
        std::size_t waiting = 0;          // the row is in ready_ while some wait
        std::uint32_t first_waiting = 0;  // no slot before it waits
        bool marked = false;              // its done marks are on file (messages_done)
        [[nodiscard]] std::uint64_t expires_ms(std::size_t index) const { return expiries ? expiries[index] : 0; }
    };
    struct Position {
        std::int64_t seq = 0;
        std::uint32_t index = 0;
        friend bool operator<(const Position& a, const Position& b) {
            return a.seq != b.seq ? a.seq < b.seq : a.index < b.index;
        }
    };
    // A position in 64 bits, as the id index holds it: the row's seq above, the index below.
    static constexpr int kIndexBits = 8;
    static_assert(kMaxRowMessages <= (std::size_t{1} << kIndexBits));
    static constexpr std::int64_t kMaxSeq = std::numeric_limits<std::int64_t>::max() >> kIndexBits;
    [[nodiscard]] static std::uint64_t pack(const Position& at) {
        return (static_cast<std::uint64_t>(at.seq) << kIndexBits) | at.index;
    }
    [[nodiscard]] static Position unpack(std::uint64_t packed) {
        return Position{static_cast<std::int64_t>(packed >> kIndexBits),
                        static_cast<std::uint32_t>(packed & ((1u << kIndexBits) - 1))};
    }
    // The id index holds positions only (8 bytes a message, no node): the id a position stands
    // for is read from its slot, so a lookup by id hashes and compares the ids of the slots.
    struct PositionHash {
        using is_transparent = void;
        const SqliteOutboundQueue* queue = nullptr;
        std::size_t operator()(const protocol::MessageId& id) const noexcept { return protocol::MessageIdHash{}(id); }
        std::size_t operator()(std::uint64_t packed) const { return (*this)(queue->id_at(packed)); }
    };
    struct PositionEqual {
        using is_transparent = void;
        const SqliteOutboundQueue* queue = nullptr;
        bool operator()(std::uint64_t a, std::uint64_t b) const { return a == b; }
        bool operator()(const protocol::MessageId& id, std::uint64_t packed) const {
            return queue->id_at(packed) == id;
        }
        bool operator()(std::uint64_t packed, const protocol::MessageId& id) const {
            return queue->id_at(packed) == id;
        }
    };
    struct Backoff {
        std::uint32_t attempts = 0;
        std::uint64_t next_attempt_ms = 0;
    };

    SqliteOutboundQueue(std::shared_ptr<Database> database, QueueLimits limits, QueueOptions options);
    // Builds the index from the file; messages in `in_flight` that are still queued stay in flight.
    [[nodiscard]] Result<void> load();
    [[nodiscard]] Result<void> load_counters() { return load(); }
    [[nodiscard]] Result<std::vector<OutboundMessage>> read_row(std::int64_t seq) const;
    // Stores `messages` as new rows (consecutive ones of one channel and priority together).
    [[nodiscard]] Result<void> insert_rows(const std::vector<const OutboundMessage*>& messages);
    void index_row(std::int64_t seq, const std::vector<const OutboundMessage*>& messages);
    void set_waiting(const Position& at);
    void set_done(const Position& at);
    // Writes the done marks of `rows` (the row goes when all are done).
    [[nodiscard]] Result<void> write_done(const std::set<std::int64_t>& rows);
    // The messages at `at` become dead letters with `reason`; appended to `out` if given.
    [[nodiscard]] Result<void> make_dead(const std::vector<Position>& at, std::string_view reason, std::uint64_t now_ms,
                                         const std::map<Position, std::string>* reasons,
                                         std::vector<OutboundMessage>* out);
    [[nodiscard]] Result<std::vector<QueueEntry>> dead_entries(std::optional<protocol::Priority> priority,
                                                               std::size_t limit) const;
    [[nodiscard]] Result<void> prune_dead_letters();
    [[nodiscard]] std::uint64_t retry_delay(std::uint32_t attempts) const;
    // A row by seq in constant time (the id index hashes and compares ids through it); it must exist.
    [[nodiscard]] const Row& row(std::int64_t seq) const { return *row_at_.at(seq); }
    [[nodiscard]] Row& row(std::int64_t seq) { return *row_at_.at(seq); }
    [[nodiscard]] Row* find_row(std::int64_t seq) const {
        const auto found = row_at_.find(seq);
        return found == row_at_.end() ? nullptr : found->second;
    }
    Row& add_row(std::int64_t seq);
    void erase_row(std::int64_t seq);
    void clear_rows();
    [[nodiscard]] const Slot& slot(const Position& at) const { return row(at.seq).slots[at.index]; }
    [[nodiscard]] Slot& slot(const Position& at) { return row(at.seq).slots[at.index]; }
    [[nodiscard]] const protocol::MessageId& id_at(std::uint64_t packed) const { return slot(unpack(packed)).id; }
    [[nodiscard]] std::optional<Position> find(const protocol::MessageId& id) const {
        const auto found = index_.find(id);
        if (found == index_.end()) return std::nullopt;
        return unpack(*found);
    }

    std::shared_ptr<Database> database_;
    QueueLimits limits_;
    QueueOptions options_;
    std::map<std::int64_t, Row> rows_;                                             // by seq: arrival order
    boost::unordered_flat_map<std::int64_t, Row*> row_at_;                         // the same rows, to look up
    boost::unordered_flat_set<std::uint64_t, PositionHash, PositionEqual> index_;  // every queued message
    std::array<std::set<std::int64_t>, kPriorities> ready_;  // rows with waiting messages, per priority
    std::map<Position, Backoff> backoffs_;                   // released or deferred, as in retries
    boost::unordered_flat_map<protocol::MessageId, Position, protocol::MessageIdHash> in_flight_;
    std::size_t waiting_ = 0;
    std::size_t dead_ = 0;
    std::uint64_t live_bytes_ = 0;
    // No waiting message expires before this (0: not known), so expire_due() looks only when
    // one may have: a status request does not scan a long queue each time.
    std::uint64_t next_expiry_ms_ = 0;
};

// Moves the outbound queue of a schema 1 state file (one row per message, its state in the row),
// renamed messages_schema_1, into the tables of schema 2, inside the caller's transaction
// (open_state_database's upgrade), and drops it.
[[nodiscard]] Result<void> upgrade_outbound_queue_from_schema_1(Database& database);

}  // namespace aegis::store
