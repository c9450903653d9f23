#include "store/outbound_store.h"

#include <algorithm>
#include <random>

#include "core/wire.h"
#include "store/sqlite.h"
#include "store/state_database.h"

namespace aegis::store {

namespace {

// Every query that yields a QueueEntry selects these columns in this order.
constexpr const char* kEntryColumns =
    "id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload, attempts, "
    "next_attempt_ms, state, dead_reason, dead_at_ms, length(payload), seq";
// The same without the payload, for listings.
constexpr const char* kListColumns =
    "id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, zeroblob(0), attempts, "
    "next_attempt_ms, state, dead_reason, dead_at_ms, length(payload), seq";

[[nodiscard]] std::string hex(const protocol::MessageId& id) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (const auto byte : id) {
        out.push_back(kDigits[byte >> 4]);
        out.push_back(kDigits[byte & 0x0f]);
    }
    return out;
}

[[nodiscard]] std::optional<MessageState> parse_state(std::string_view text) {
    if (text == "waiting") return MessageState::waiting;
    if (text == "in_flight") return MessageState::in_flight;
    if (text == "dead") return MessageState::dead;
    return std::nullopt;
}

[[nodiscard]] Bytes encode_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    WireWriter writer;
    writer.u16(static_cast<std::uint16_t>(headers.size()));
    for (const auto& [key, value] : headers) {
        writer.text8(key);
        writer.bytes32(as_bytes(value));
    }
    return writer.take();
}

[[nodiscard]] bool decode_headers(ByteView bytes, std::vector<std::pair<std::string, std::string>>& headers) {
    WireReader reader(bytes);
    std::uint16_t count = 0;
    if (!reader.u16(count)) return false;
    for (std::uint16_t i = 0; i < count; ++i) {
        std::string key;
        ByteView value;
        if (!reader.text8(key) || !reader.bytes32(value)) return false;
        headers.emplace_back(std::move(key), std::string(as_text(value)));
    }
    return reader.at_end();
}

[[nodiscard]] bool read_id(ByteView blob, protocol::MessageId& id) {
    if (blob.size() != id.size()) return false;
    std::copy(blob.begin(), blob.end(), id.begin());
    return true;
}

[[nodiscard]] Error corrupt_row(const Database& database) {
    return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): a queued message cannot be read",
                      database.path().string(), database.label());
}

// Reads a row selected with kEntryColumns (or kListColumns).
[[nodiscard]] Result<StoredMessage> read_row(const Statement& row, const Database& database) {
    StoredMessage out;
    auto& entry = out.entry;
    auto& message = out.message;
    const auto priority = row.column_int(2);
    const auto kind = row.column_int(3);
    const auto state = parse_state(row.column_text(11));
    if (!read_id(row.column_blob_view(0), entry.id) || !read_id(row.column_blob_view(4), message.correlation) ||
        priority < 0 || priority > static_cast<int>(protocol::Priority::low) || kind < 0 ||
        kind > static_cast<int>(protocol::Kind::heartbeat) || !state ||
        !decode_headers(row.column_blob_view(5), message.headers)) {
        return corrupt_row(database);
    }
    entry.channel = row.column_text(1);
    entry.priority = static_cast<protocol::Priority>(priority);
    entry.kind = static_cast<protocol::Kind>(kind);
    entry.state = *state;
    entry.attempts = static_cast<std::uint32_t>(row.column_int(9));
    entry.timestamp_ms = row.column_uint(6);
    entry.expires_ms = row.column_uint(7);
    entry.next_attempt_ms = row.column_uint(10);
    entry.payload_bytes = static_cast<std::size_t>(row.column_int(14));
    entry.dead_reason = row.column_text(12);
    entry.dead_at_ms = row.column_uint(13);

    message.id = entry.id;
    message.channel = entry.channel;
    message.priority = entry.priority;
    message.kind = entry.kind;
    message.timestamp_ms = entry.timestamp_ms;
    message.expires_ms = entry.expires_ms;
    message.payload = row.column_blob(8);
    return out;
}

[[nodiscard]] std::uint64_t uniform_jitter(std::uint64_t cap) {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    return std::uniform_int_distribution<std::uint64_t>(0, cap)(generator);
}

struct RowState {
    MessageState state;
    std::uint64_t payload_bytes;
    std::uint32_t attempts;
};

[[nodiscard]] Result<std::optional<RowState>> row_state(Database& database, const protocol::MessageId& id) {
    auto lease = database.cached("SELECT state, length(payload), attempts FROM messages WHERE id = ?1");
    if (!lease) return lease.take_error();
    auto& statement = **lease;
    statement.bind(1, ByteView(id));
    auto row = statement.step();
    if (!row) return row.take_error();
    if (!*row) return std::optional<RowState>{};
    const auto state = parse_state(statement.column_text(0));
    if (!state) return corrupt_row(database);
    return std::optional<RowState>{
        RowState{*state, statement.column_uint(1), static_cast<std::uint32_t>(statement.column_int(2))}};
}

}  // namespace

std::string_view to_string(MessageState state) {
    switch (state) {
        case MessageState::waiting: return "waiting";
        case MessageState::in_flight: return "in_flight";
        case MessageState::dead: return "dead";
    }
    return "unknown";
}

// ---- opening ----

SqliteOutboundQueue::SqliteOutboundQueue(std::shared_ptr<Database> database, QueueLimits limits, QueueOptions options)
    : database_(std::move(database)), limits_(limits), options_(std::move(options)) {}

SqliteOutboundQueue::~SqliteOutboundQueue() = default;

Result<std::unique_ptr<SqliteOutboundQueue>> SqliteOutboundQueue::open(const std::filesystem::path& file,
                                                                       QueueLimits limits, QueueOptions options) {
    auto database = open_state_database(file);
    if (!database) return database.take_error();
    return open(std::move(*database), limits, std::move(options));
}

Result<std::unique_ptr<SqliteOutboundQueue>> SqliteOutboundQueue::open(std::shared_ptr<Database> database,
                                                                       QueueLimits limits, QueueOptions options) {
    std::unique_ptr<SqliteOutboundQueue> queue(
        new SqliteOutboundQueue(std::move(database), limits, std::move(options)));
    // Files written before in-flight state moved to memory may hold rows marked in flight:
    // a broker killed with them in flight sends them again, like any other.
    if (auto released = queue->database_->exec("UPDATE messages SET state = 'waiting' WHERE state = 'in_flight'");
        !released) {
        return released.take_error();
    }
    if (auto loaded = queue->load_counters(); !loaded) return loaded.take_error();
    return queue;
}

Result<void> SqliteOutboundQueue::load_counters() {
    auto statement = database_->prepare("SELECT state, count(*), total(length(payload)) FROM messages GROUP BY state");
    if (!statement) return statement.take_error();
    waiting_ = dead_ = 0;
    live_bytes_ = 0;
    rewind_all();  // a rolled-back transaction may have left waiting rows behind the cursors
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) break;
        const auto state = parse_state(statement->column_text(0));
        if (!state) return corrupt_row(*database_);
        const auto count = static_cast<std::size_t>(statement->column_int(1));
        const auto bytes = static_cast<std::uint64_t>(statement->column_int(2));
        switch (*state) {
            case MessageState::waiting:
            case MessageState::in_flight:  // none since open()
                waiting_ += count;
                live_bytes_ += bytes;
                break;
            case MessageState::dead: dead_ = count; break;
        }
    }
    // What is in flight is stored as waiting. Every entry has its row: entries go only after
    // their row's removal commits, and a rollback that brings a row back leaves it waiting.
    waiting_ -= std::min(waiting_, in_flight_.size());
    return {};
}

void SqliteOutboundQueue::rewind(protocol::Priority priority, std::int64_t seq) {
    auto& scan = scans_[static_cast<std::size_t>(priority)];
    scan.cursor = std::min(scan.cursor, seq - 1);
    scan.maybe_more = true;
}

void SqliteOutboundQueue::rewind_all() {
    scans_.fill(Scan{});
    next_expiry_ms_ = 0;
}

std::uint64_t SqliteOutboundQueue::retry_delay(std::uint32_t attempts) const {
    const auto& backoff = options_.backoff;
    const std::uint32_t doublings = attempts == 0 ? 0 : attempts - 1;
    std::uint64_t cap = backoff.max_ms;
    if (doublings < 63 && backoff.base_ms <= (backoff.max_ms >> doublings)) cap = backoff.base_ms << doublings;
    return options_.jitter ? std::min(options_.jitter(cap), cap) : uniform_jitter(cap);
}

// ---- pushing ----

Result<void> SqliteOutboundQueue::push(OutboundMessage message) {
    std::vector<OutboundMessage> one;
    one.push_back(std::move(message));
    return push_many(one);
}

Result<void> SqliteOutboundQueue::push_many(const std::vector<OutboundMessage>& messages) {
    if (messages.empty()) return {};
    std::uint64_t bytes = 0;
    for (const auto& message : messages) bytes += message.payload.size();
    const auto live = waiting_ + in_flight_.size();
    if (live + messages.size() > limits_.max_messages || live_bytes_ + bytes > limits_.max_bytes) {
        return make_error(ExitCode::failure, "queue full ({} messages / {} bytes, limit {} messages / {} bytes)", live,
                          live_bytes_, limits_.max_messages, limits_.max_bytes);
    }
    // Fsync'd unless every message is a request or reply (protocol::bounded_by_requester).
    auto transaction =
        database_->begin(protocol::any_needs_fsync(messages) ? Durability::power_loss : Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto lease = database_->cached(
        "INSERT INTO messages (id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING");
    if (!lease) return lease.take_error();
    auto& insert = **lease;
    std::size_t added = 0;
    std::uint64_t added_bytes = 0;
    for (const auto& message : messages) {
        insert.reset();
        insert.bind(1, ByteView(message.id))
            .bind(2, std::string_view(message.channel))
            .bind(3, static_cast<int>(message.priority))
            .bind(4, static_cast<int>(message.kind))
            .bind(5, ByteView(message.correlation))
            .bind(6, ByteView(encode_headers(message.headers)))
            .bind(7, message.timestamp_ms)
            .bind(8, message.expires_ms)
            .bind(9, ByteView(message.payload));
        if (auto inserted = insert.run(); !inserted) return inserted;
        if (database_->changes() > 0) {
            ++added;
            added_bytes += message.payload.size();
            // A row id is reused after the newest row is deleted: it may be behind the cursor.
            rewind(message.priority, database_->last_insert_rowid());
        }
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    waiting_ += added;
    live_bytes_ += added_bytes;
    for (const auto& message : messages) {
        if (message.expires_ms != 0) next_expiry_ms_ = std::min(next_expiry_ms_, message.expires_ms);
    }
    return {};
}

// ---- sending ----

Result<std::vector<OutboundMessage>> SqliteOutboundQueue::take_batch(const BatchLimits& limits, std::uint64_t now_ms,
                                                                     std::vector<OutboundMessage>& expired) {
    std::vector<OutboundMessage> batch;
    if (waiting_ == 0) return batch;
    const std::size_t max_messages = std::max<std::size_t>(limits.max_messages, 1);
    const std::size_t chunk = max_messages + 16;
    std::uint64_t batch_bytes = 0;
    std::vector<std::pair<std::int64_t, OutboundMessage>> taken;
    std::vector<std::pair<std::int64_t, OutboundMessage>> newly_expired;
    // The scans as they will be once the expired rows are marked; nothing changes before.
    auto scans = scans_;

    for (std::size_t priority = 0; priority < kPriorities && taken.empty(); ++priority) {
        auto& scan = scans[priority];
        if (scan.deferred_due_ms <= now_ms) {  // a backoff is over: read those rows again
            scan.cursor = std::min(scan.cursor, scan.deferred_from - 1);
            scan.deferred_from = kNoRow;
            scan.deferred_due_ms = std::numeric_limits<std::uint64_t>::max();
            scan.maybe_more = true;
        }
        bool done = !scan.maybe_more;
        bool full = false;  // stopped at the batch limits, with rows left past the cursor
        while (!done) {
            // Read a chunk, then decide: rows changed while a query is open might be seen twice.
            std::vector<std::pair<std::int64_t, StoredMessage>> rows;
            {
                auto lease = database_->cached(fmt::format(
                    "SELECT {} FROM messages WHERE state = 'waiting' AND priority = ?1 AND seq > ?2 ORDER BY seq "
                    "LIMIT ?3",
                    kEntryColumns));
                if (!lease) return lease.take_error();
                auto& select = **lease;
                select.bind(1, static_cast<std::int64_t>(priority))
                    .bind(2, scan.cursor)
                    .bind(3, static_cast<std::int64_t>(chunk));
                for (;;) {
                    auto row = select.step();
                    if (!row) return row.take_error();
                    if (!*row) break;
                    auto stored = read_row(select, *database_);
                    if (!stored) return stored.take_error();
                    rows.emplace_back(select.column_int(15), std::move(*stored));
                }
            }
            done = rows.size() < chunk;
            for (auto& [seq, stored] : rows) {
                auto& message = stored.message;
                if (in_flight_.count(message.id) != 0) {  // read again after a rewind
                    scan.cursor = seq;
                    continue;
                }
                if (message.expires_ms != 0 && message.expires_ms <= now_ms) {
                    scan.cursor = seq;
                    newly_expired.emplace_back(seq, std::move(message));
                    continue;
                }
                if (stored.entry.next_attempt_ms > now_ms) {  // backing off: does not hold the others
                    scan.cursor = seq;
                    scan.deferred_from = std::min(scan.deferred_from, seq);
                    scan.deferred_due_ms = std::min(scan.deferred_due_ms, stored.entry.next_attempt_ms);
                    continue;
                }
                // Headers count too: a batch must fit protocol::kMaxBatchBytes once encoded.
                const auto message_bytes = protocol::encoded_message_bytes(message.headers, message.payload.size());
                if (!taken.empty()) {
                    const auto& first = taken.front().second;
                    if (message.channel != first.channel || taken.size() >= max_messages ||
                        batch_bytes + message_bytes > limits.max_bytes) {
                        done = full = true;
                        break;
                    }
                }
                scan.cursor = seq;
                batch_bytes += message_bytes;
                taken.emplace_back(seq, std::move(message));
            }
        }
        if (!full) scan.maybe_more = false;  // every row past the cursor was read
    }

    std::uint64_t expired_bytes = 0;
    if (!newly_expired.empty()) {
        auto transaction = database_->begin(Durability::process_crash);
        if (!transaction) return transaction.take_error();
        auto lease = database_->cached(
            "UPDATE messages SET state = 'dead', dead_reason = 'expired', dead_at_ms = ?2 WHERE seq = ?1");
        if (!lease) return lease.take_error();
        for (const auto& [seq, message] : newly_expired) {
            auto& update = **lease;
            update.reset();
            update.bind(1, seq).bind(2, now_ms);
            if (auto updated = update.run(); !updated) return updated.take_error();
            expired_bytes += message.payload.size();
        }
        if (auto committed = transaction->commit(); !committed) return committed.take_error();
    }
    scans_ = scans;
    batch.reserve(taken.size());
    for (auto& [seq, message] : taken) {
        in_flight_.emplace(message.id, InFlight{seq, message.priority, message.payload.size()});
        batch.push_back(std::move(message));
    }
    waiting_ -= batch.size() + newly_expired.size();
    dead_ += newly_expired.size();
    live_bytes_ -= expired_bytes;
    for (auto& entry : newly_expired) expired.push_back(std::move(entry.second));
    if (dead_ > limits_.max_dead_letters) (void)prune_dead_letters();  // best effort; retried next time
    return batch;
}

Result<void> SqliteOutboundQueue::acknowledge(const std::vector<protocol::MessageId>& ids) {
    if (ids.empty()) return {};
    std::size_t removed_waiting = 0, removed_dead = 0;
    std::uint64_t removed_bytes = 0;
    std::vector<protocol::MessageId> removed_in_flight;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto erase = database_->cached("DELETE FROM messages WHERE seq BETWEEN ?1 AND ?2");
    if (!erase) return erase.take_error();
    const auto remove_rows = [&](std::int64_t first, std::int64_t last) {
        auto& remove = **erase;
        remove.reset();
        remove.bind(1, first).bind(2, last);
        return remove.run();
    };
    // The usual case: the messages were in flight, and a batch's rows have consecutive row ids.
    // Each run of consecutive ones goes in one statement: no other row lies between them.
    using Entry = decltype(in_flight_)::value_type;
    std::vector<const Entry*> rows;  // in flight, by row id
    std::vector<const protocol::MessageId*> others;
    for (const auto& id : ids) {
        if (const auto flight = in_flight_.find(id); flight != in_flight_.end()) {
            rows.push_back(&*flight);
        } else {
            others.push_back(&id);
        }
    }
    const auto row_id = [](const Entry* entry) { return entry->second.seq; };
    std::sort(rows.begin(), rows.end(), [&](const Entry* a, const Entry* b) { return row_id(a) < row_id(b); });
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());  // an id acknowledged twice counts once
    for (std::size_t first = 0; first < rows.size();) {
        std::size_t last = first;
        while (last + 1 < rows.size() && row_id(rows[last + 1]) == row_id(rows[last]) + 1) ++last;
        if (auto removed = remove_rows(row_id(rows[first]), row_id(rows[last])); !removed) return removed;
        first = last + 1;
    }
    for (const auto* entry : rows) {
        removed_bytes += entry->second.payload_bytes;
        removed_in_flight.push_back(entry->first);
    }
    for (const auto* other : others) {
        const auto& id = *other;
        // A lookup then a delete by rowid: DELETE ... RETURNING builds a result table per row
        // and cost more than twice as much.
        auto find = database_->cached("SELECT seq, state, length(payload) FROM messages WHERE id = ?1");
        if (!find) return find.take_error();
        auto& lookup = **find;
        lookup.bind(1, ByteView(id));
        auto row = lookup.step();
        if (!row) return row.take_error();
        if (!*row) continue;  // acknowledged twice, or removed by the operator meanwhile
        const auto seq = lookup.column_int(0);
        const auto state = parse_state(lookup.column_text(1));
        const auto bytes = lookup.column_uint(2);
        lookup.reset();
        if (auto removed = remove_rows(seq, seq); !removed) return removed;
        if (state == MessageState::dead) {
            ++removed_dead;
        } else {
            ++removed_waiting;
            removed_bytes += bytes;
        }
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    for (const auto& id : removed_in_flight) in_flight_.erase(id);
    waiting_ -= removed_waiting;
    dead_ -= removed_dead;
    live_bytes_ -= removed_bytes;
    return {};
}

Result<void> SqliteOutboundQueue::dead_letter(const std::vector<protocol::MessageId>& ids, std::string_view reason,
                                              std::uint64_t now_ms) {
    if (ids.empty()) return {};
    std::size_t from_waiting = 0;
    std::vector<protocol::MessageId> from_in_flight;
    std::uint64_t bytes = 0;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    for (const auto& id : ids) {
        auto current = row_state(*database_, id);
        if (!current) return current.take_error();
        if (!*current || (*current)->state == MessageState::dead) continue;
        auto lease =
            database_->cached("UPDATE messages SET state = 'dead', dead_reason = ?2, dead_at_ms = ?3 WHERE id = ?1");
        if (!lease) return lease.take_error();
        (*lease)->bind(1, ByteView(id)).bind(2, reason).bind(3, now_ms);
        if (auto updated = (*lease)->run(); !updated) return updated;
        if (in_flight_.count(id) != 0) {
            from_in_flight.push_back(id);
        } else {
            ++from_waiting;
        }
        bytes += (*current)->payload_bytes;
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    for (const auto& id : from_in_flight) in_flight_.erase(id);
    waiting_ -= from_waiting;
    dead_ += from_waiting + from_in_flight.size();
    live_bytes_ -= bytes;
    if (dead_ > limits_.max_dead_letters) return prune_dead_letters();
    return {};
}

Result<void> SqliteOutboundQueue::prune_dead_letters() {
    // In steps of a tenth of the limit, so a full dead-letter list does not cost a sort per message.
    const std::size_t keep = limits_.max_dead_letters - limits_.max_dead_letters / 10;
    if (dead_ <= keep) return {};
    auto statement = database_->prepare(
        "DELETE FROM messages WHERE seq IN "
        "(SELECT seq FROM messages WHERE state = 'dead' ORDER BY dead_at_ms, seq LIMIT ?1)");
    if (!statement) return statement.take_error();
    statement->bind(1, static_cast<std::int64_t>(dead_ - keep));
    if (auto pruned = statement->run(); !pruned) return pruned;
    dead_ -= static_cast<std::size_t>(database_->changes());
    return {};
}

Result<void> SqliteOutboundQueue::release(const std::vector<protocol::MessageId>& ids, std::uint64_t now_ms,
                                          std::string_view last_reason) {
    if (ids.empty()) return {};
    next_expiry_ms_ = 0;  // waiting again, with their expiry
    std::vector<protocol::MessageId> released, given_up;
    std::uint64_t given_up_bytes = 0;
    const auto max_attempts = options_.backoff.max_attempts;
    const auto gave_up_text = [&](std::uint32_t attempts) {
        return last_reason.empty() ? fmt::format("gave up after {} attempts", attempts)
                                   : fmt::format("gave up after {} attempts: {}", attempts, last_reason);
    };
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    for (const auto& id : ids) {
        if (in_flight_.count(id) == 0) continue;
        auto current = row_state(*database_, id);
        if (!current) return current.take_error();
        if (!*current) continue;
        const std::uint32_t attempts = (*current)->attempts + 1;
        const bool give_up = max_attempts != 0 && attempts >= max_attempts;
        auto lease = database_->cached(
            "UPDATE messages SET attempts = ?2, next_attempt_ms = ?3, state = ?4, dead_reason = ?5, "
            "dead_at_ms = ?6 WHERE id = ?1");
        if (!lease) return lease.take_error();
        auto& update = **lease;
        update.bind(1, ByteView(id)).bind(2, static_cast<std::int64_t>(attempts));
        if (give_up) {
            update.bind(3, std::int64_t{0})
                .bind(4, std::string_view("dead"))
                .bind(5, std::string_view(gave_up_text(attempts)))
                .bind(6, now_ms);
            given_up.push_back(id);
            given_up_bytes += (*current)->payload_bytes;
        } else {
            update.bind(3, now_ms + retry_delay(attempts))
                .bind(4, std::string_view("waiting"))
                .bind_null(5)
                .bind_null(6);
            released.push_back(id);
        }
        if (auto updated = update.run(); !updated) return updated;
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    for (const auto& id : released) {
        const auto flight = in_flight_.find(id);
        rewind(flight->second.priority, flight->second.seq);
        in_flight_.erase(flight);
    }
    for (const auto& id : given_up) in_flight_.erase(id);
    waiting_ += released.size();
    dead_ += given_up.size();
    live_bytes_ -= given_up_bytes;
    return {};
}

Result<void> SqliteOutboundQueue::defer(const std::vector<protocol::MessageId>& ids, std::uint64_t until_ms) {
    if (ids.empty()) return {};
    next_expiry_ms_ = 0;  // waiting again, with their expiry
    std::vector<protocol::MessageId> deferred;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto lease = database_->cached("UPDATE messages SET next_attempt_ms = ?2 WHERE id = ?1 AND state = 'waiting'");
    if (!lease) return lease.take_error();
    for (const auto& id : ids) {
        if (in_flight_.count(id) == 0) continue;
        auto& update = **lease;
        update.reset();
        update.bind(1, ByteView(id)).bind(2, until_ms);
        if (auto updated = update.run(); !updated) return updated;
        deferred.push_back(id);
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    for (const auto& id : deferred) {
        const auto flight = in_flight_.find(id);
        rewind(flight->second.priority, flight->second.seq);
        in_flight_.erase(flight);
    }
    waiting_ += deferred.size();
    return {};
}

Result<void> SqliteOutboundQueue::undefer_channel(const std::string& channel) {
    auto lease = database_->cached(
        "UPDATE messages SET next_attempt_ms = 0 WHERE channel = ?1 AND state = 'waiting' AND "
        "next_attempt_ms > 0");
    if (!lease) return lease.take_error();
    auto& update = **lease;
    update.bind(1, std::string_view(channel));
    if (auto updated = update.run(); !updated) return updated;
    rewind_all();
    return {};
}

void SqliteOutboundQueue::release_in_flight() {
    if (!in_flight_.empty()) next_expiry_ms_ = 0;
    for (const auto& [id, flight] : in_flight_) rewind(flight.priority, flight.seq);
    waiting_ += in_flight_.size();
    in_flight_.clear();
}

Result<void> SqliteOutboundQueue::expire_due(std::uint64_t now_ms, std::vector<OutboundMessage>& expired) {
    if (waiting_ == 0 || now_ms < next_expiry_ms_) return {};
    std::vector<std::pair<std::int64_t, OutboundMessage>> due;
    std::uint64_t due_bytes = 0;
    bool due_in_flight = false;
    std::uint64_t next_expiry = std::numeric_limits<std::uint64_t>::max();
    {
        auto lease =
            database_->cached("SELECT min(expires_ms) FROM messages WHERE state = 'waiting' AND expires_ms > ?1");
        if (!lease) return lease.take_error();
        auto& select = **lease;
        select.bind(1, now_ms);
        auto row = select.step();
        if (!row) return row.take_error();
        if (*row && !select.column_is_null(0)) next_expiry = select.column_uint(0);
    }
    {
        auto lease = database_->cached(
            "SELECT seq, id, channel, kind, length(payload) FROM messages "
            "WHERE state = 'waiting' AND expires_ms != 0 AND expires_ms <= ?1");
        if (!lease) return lease.take_error();
        auto& select = **lease;
        select.bind(1, now_ms);
        for (;;) {
            auto row = select.step();
            if (!row) return row.take_error();
            if (!*row) break;
            OutboundMessage message;
            const auto kind = select.column_int(3);
            if (!read_id(select.column_blob_view(1), message.id) || kind < 0 ||
                kind > static_cast<int>(protocol::Kind::heartbeat)) {
                return corrupt_row(*database_);
            }
            if (in_flight_.count(message.id) != 0) {  // its answer decides
                due_in_flight = true;
                continue;
            }
            message.channel = select.column_text(2);
            message.kind = static_cast<protocol::Kind>(kind);
            due_bytes += select.column_uint(4);
            due.emplace_back(select.column_int(0), std::move(message));
        }
    }
    if (due.empty()) {
        next_expiry_ms_ = due_in_flight ? 0 : next_expiry;
        return {};
    }
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    {
        auto lease = database_->cached(
            "UPDATE messages SET state = 'dead', dead_reason = 'expired', dead_at_ms = ?2 WHERE seq = ?1");
        if (!lease) return lease.take_error();
        for (const auto& [seq, message] : due) {
            auto& update = **lease;
            update.reset();
            update.bind(1, seq).bind(2, now_ms);
            if (auto updated = update.run(); !updated) return updated.take_error();
        }
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    waiting_ -= due.size();
    dead_ += due.size();
    live_bytes_ -= due_bytes;
    next_expiry_ms_ = due_in_flight ? 0 : next_expiry;
    for (auto& entry : due) expired.push_back(std::move(entry.second));
    if (dead_ > limits_.max_dead_letters) (void)prune_dead_letters();
    return {};
}

// ---- operator API ----

MessageState SqliteOutboundQueue::state_of(const QueueEntry& entry) const {
    if (entry.state == MessageState::waiting && in_flight_.count(entry.id) != 0) return MessageState::in_flight;
    return entry.state;
}

Result<std::vector<QueueEntry>> SqliteOutboundQueue::list(std::optional<MessageState> state, std::size_t limit) const {
    // In flight is stored as waiting: those two are told apart here, so the limit is applied here.
    std::optional<std::string_view> stored_state;
    if (state) stored_state = to_string(*state == MessageState::in_flight ? MessageState::waiting : *state);
    auto statement = database_->prepare(
        fmt::format("SELECT {} FROM messages WHERE ?1 IS NULL OR state = ?1 ORDER BY priority, seq", kListColumns));
    if (!statement) return statement.take_error();
    if (stored_state) {
        statement->bind(1, *stored_state);
    } else {
        statement->bind_null(1);
    }
    std::vector<QueueEntry> out;
    while (limit == 0 || out.size() < limit) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) break;
        auto stored = read_row(*statement, *database_);
        if (!stored) return stored.take_error();
        stored->entry.state = state_of(stored->entry);
        if (state && stored->entry.state != *state) continue;
        out.push_back(std::move(stored->entry));
    }
    return out;
}

Result<std::optional<StoredMessage>> SqliteOutboundQueue::get(const protocol::MessageId& id) const {
    auto statement = database_->prepare(fmt::format("SELECT {} FROM messages WHERE id = ?1", kEntryColumns));
    if (!statement) return statement.take_error();
    statement->bind(1, ByteView(id));
    auto row = statement->step();
    if (!row) return row.take_error();
    if (!*row) return std::optional<StoredMessage>{};
    auto stored = read_row(*statement, *database_);
    if (!stored) return stored.take_error();
    stored->entry.state = state_of(stored->entry);
    return std::optional<StoredMessage>{std::move(*stored)};
}

Result<void> SqliteOutboundQueue::retry(const protocol::MessageId& id, std::uint64_t now_ms,
                                        std::uint64_t fresh_ttl_ms) {
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    auto current = row_state(*database_, id);
    if (!current) return current.take_error();
    if (!*current) return make_error(ExitCode::failure, "no message {} in the queue", hex(id));
    if (in_flight_.count(id) != 0) {
        return make_error(ExitCode::failure, "message {} is being sent; it is retried if the gateway does not store it",
                          hex(id));
    }
    std::uint64_t expires_ms = 0;
    {
        auto lease = database_->cached("SELECT expires_ms FROM messages WHERE id = ?1");
        if (!lease) return lease.take_error();
        auto& select = **lease;
        select.bind(1, ByteView(id));
        auto row = select.step();
        if (!row) return row.take_error();
        if (*row) expires_ms = select.column_uint(0);
    }
    const bool expired = expires_ms != 0 && expires_ms <= now_ms;
    if (expired && fresh_ttl_ms == 0) {
        return make_error(ExitCode::refused,
                          "message {} expired {} ms ago: it would expire again at once, so it is not retried "
                          "(give it a fresh TTL to send it)",
                          hex(id), now_ms - expires_ms);
    }
    next_expiry_ms_ = 0;
    auto statement = database_->prepare(
        "UPDATE messages SET state = 'waiting', attempts = 0, next_attempt_ms = 0, dead_reason = NULL, "
        "dead_at_ms = NULL, expires_ms = ?2 WHERE id = ?1 RETURNING seq, priority");
    if (!statement) return statement.take_error();
    statement->bind(1, ByteView(id)).bind(2, expired ? now_ms + fresh_ttl_ms : expires_ms);
    auto row = statement->step();
    if (!row) return row.take_error();
    if (!*row) return make_error(ExitCode::failure, "no message {} in the queue", hex(id));
    const auto seq = statement->column_int(0);
    const auto priority = statement->column_int(1);
    if (auto rest = statement->step(); !rest) return rest.take_error();
    if (auto committed = transaction->commit(); !committed) return committed;
    if (priority >= 0 && static_cast<std::size_t>(priority) < kPriorities) {
        rewind(static_cast<protocol::Priority>(priority), seq);  // due now, and maybe behind the cursor
    } else {
        rewind_all();
    }
    if ((*current)->state == MessageState::dead) {
        --dead_;
        ++waiting_;
        live_bytes_ += (*current)->payload_bytes;
    }
    return {};
}

Result<SqliteOutboundQueue::Retried> SqliteOutboundQueue::retry_dead(std::uint64_t now_ms, std::uint64_t fresh_ttl_ms) {
    Retried out;
    if (fresh_ttl_ms == 0) {
        auto expired = database_->prepare(
            "SELECT count(*) FROM messages WHERE state = 'dead' AND expires_ms != 0 AND expires_ms <= ?1");
        if (!expired) return expired.take_error();
        expired->bind(1, now_ms);
        auto row = expired->step();
        if (!row) return row.take_error();
        out.expired = *row ? static_cast<std::size_t>(expired->column_int(0)) : 0;
    }
    // ?2 = 0: expired ones stay dead; otherwise they get the fresh expiry ?2.
    auto statement = database_->prepare(
        "UPDATE messages SET state = 'waiting', attempts = 0, next_attempt_ms = 0, dead_reason = NULL, "
        "dead_at_ms = NULL, expires_ms = CASE WHEN expires_ms != 0 AND expires_ms <= ?1 THEN ?2 ELSE expires_ms END "
        "WHERE state = 'dead' AND (?2 != 0 OR expires_ms = 0 OR expires_ms > ?1) RETURNING length(payload)");
    if (!statement) return statement.take_error();
    statement->bind(1, now_ms).bind(2, fresh_ttl_ms == 0 ? std::uint64_t{0} : now_ms + fresh_ttl_ms);
    std::size_t count = 0;
    std::uint64_t bytes = 0;
    for (;;) {
        auto row = statement->step();
        if (!row) {
            (void)load_counters();
            return row.take_error();
        }
        if (!*row) break;
        ++count;
        bytes += statement->column_uint(0);
    }
    dead_ -= count;
    waiting_ += count;
    live_bytes_ += bytes;
    rewind_all();
    out.count = count;
    return out;
}

Result<void> SqliteOutboundQueue::remove(const protocol::MessageId& id) {
    auto existing = row_state(*database_, id);
    if (!existing) return existing.take_error();
    if (!*existing) return make_error(ExitCode::failure, "no message {} in the queue", hex(id));
    return acknowledge({id});
}

Result<std::size_t> SqliteOutboundQueue::purge_dead() {
    if (auto purged = database_->exec("DELETE FROM messages WHERE state = 'dead'"); !purged) return purged.take_error();
    const auto count = static_cast<std::size_t>(database_->changes());
    dead_ = 0;
    return count;
}

Result<std::size_t> SqliteOutboundQueue::purge_all() {
    if (auto purged = database_->exec("DELETE FROM messages"); !purged) return purged.take_error();
    const auto count = static_cast<std::size_t>(database_->changes());
    waiting_ = dead_ = 0;
    in_flight_.clear();
    rewind_all();
    live_bytes_ = 0;
    return count;
}

Result<QueueStats> SqliteOutboundQueue::stats() const {
    QueueStats out;
    out.waiting = waiting_;
    out.in_flight = in_flight_.size();
    out.dead = dead_;
    out.bytes = live_bytes_;
    auto dead_bytes = database_->query_int("SELECT total(length(payload)) FROM messages WHERE state = 'dead'");
    if (!dead_bytes) return dead_bytes.take_error();
    out.dead_bytes = static_cast<std::uint64_t>(*dead_bytes);
    {  // in flight is stored as waiting
        auto oldest = database_->prepare("SELECT id, timestamp_ms FROM messages WHERE state = 'waiting'");
        if (!oldest) return oldest.take_error();
        for (;;) {
            auto row = oldest->step();
            if (!row) return row.take_error();
            if (!*row) break;
            protocol::MessageId id{};
            if (!read_id(oldest->column_blob_view(0), id)) return corrupt_row(*database_);
            if (in_flight_.count(id) != 0) continue;
            const auto timestamp = oldest->column_uint(1);
            if (out.oldest_waiting_ms == 0 || timestamp < out.oldest_waiting_ms) out.oldest_waiting_ms = timestamp;
        }
    }
    auto pages = database_->query_int("PRAGMA page_count");
    if (!pages) return pages.take_error();
    auto page_size = database_->query_int("PRAGMA page_size");
    if (!page_size) return page_size.take_error();
    out.file_bytes = static_cast<std::uint64_t>(*pages) * static_cast<std::uint64_t>(*page_size);
    return out;
}

}  // namespace aegis::store
