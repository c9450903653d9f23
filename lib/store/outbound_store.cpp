#include "store/outbound_store.h"

#include <algorithm>
#include <random>

#include "core/wire.h"
#include "store/sqlite.h"
#include "store/state_database.h"

namespace aegis::store {

namespace {

// The columns of a dead letter, in the order read_dead() reads them.
constexpr const char* kDeadColumns =
    "id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload, attempts, dead_reason, "
    "dead_at_ms, length(payload)";
// The same without the payload, for listings.
constexpr const char* kDeadListColumns =
    "id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, zeroblob(0), attempts, "
    "dead_reason, dead_at_ms, length(payload)";

[[nodiscard]] std::string hex(const protocol::MessageId& id) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (const auto byte : id) {
        out.push_back(kDigits[byte >> 4]);
        out.push_back(kDigits[byte & 0x0f]);
    }
    return out;
}

void encode_headers(WireWriter& writer, const std::vector<std::pair<std::string, std::string>>& headers) {
    writer.u16(static_cast<std::uint16_t>(headers.size()));
    for (const auto& [key, value] : headers) {
        writer.text8(key);
        writer.bytes32(as_bytes(value));
    }
}

[[nodiscard]] Bytes encode_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    WireWriter writer;
    encode_headers(writer, headers);
    return writer.take();
}

[[nodiscard]] bool decode_headers(WireReader& reader, std::vector<std::pair<std::string, std::string>>& headers) {
    std::uint16_t count = 0;
    if (!reader.u16(count)) return false;
    for (std::uint16_t i = 0; i < count; ++i) {
        std::string key;
        ByteView value;
        if (!reader.text8(key) || !reader.bytes32(value)) return false;
        headers.emplace_back(std::move(key), std::string(as_text(value)));
    }
    return true;
}

[[nodiscard]] bool decode_headers(ByteView bytes, std::vector<std::pair<std::string, std::string>>& headers) {
    WireReader reader(bytes);
    return decode_headers(reader, headers) && reader.at_end();
}

// A row's body: its messages back to back, each id, kind, correlation, headers, timestamp,
// expiry and length-prefixed payload in the wire's big-endian layout (core/wire.h). The
// channel and the priority, the same for all of them, are columns of the row.
void encode_message(WireWriter& writer, const OutboundMessage& message) {
    writer.raw(message.id);
    writer.u8(static_cast<std::uint8_t>(message.kind));
    writer.raw(message.correlation);
    encode_headers(writer, message.headers);
    writer.u64(message.timestamp_ms);
    writer.u64(message.expires_ms);
    writer.bytes32(message.payload);
}

[[nodiscard]] bool decode_body(ByteView body, std::size_t count, const std::string& channel,
                               protocol::Priority priority, std::vector<OutboundMessage>& out) {
    WireReader reader(body);
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        OutboundMessage message;
        std::uint8_t kind = 0;
        ByteView payload;
        if (!reader.raw(message.id) || !reader.u8(kind) || kind > static_cast<int>(protocol::Kind::heartbeat) ||
            !reader.raw(message.correlation) || !decode_headers(reader, message.headers) ||
            !reader.u64(message.timestamp_ms) || !reader.u64(message.expires_ms) || !reader.bytes32(payload)) {
            return false;
        }
        message.channel = channel;
        message.priority = priority;
        message.kind = static_cast<protocol::Kind>(kind);
        message.payload.assign(payload.begin(), payload.end());
        out.push_back(std::move(message));
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

[[nodiscard]] bool valid_priority(std::int64_t priority) {
    return priority >= 0 && priority <= static_cast<int>(protocol::Priority::low);
}

// Reads a dead letter selected with kDeadColumns (or kDeadListColumns).
[[nodiscard]] Result<StoredMessage> read_dead(const Statement& row, const Database& database) {
    StoredMessage out;
    auto& entry = out.entry;
    auto& message = out.message;
    const auto priority = row.column_int(2);
    const auto kind = row.column_int(3);
    if (!read_id(row.column_blob_view(0), entry.id) || !read_id(row.column_blob_view(4), message.correlation) ||
        !valid_priority(priority) || kind < 0 || kind > static_cast<int>(protocol::Kind::heartbeat) ||
        !decode_headers(row.column_blob_view(5), message.headers)) {
        return corrupt_row(database);
    }
    entry.channel = row.column_text(1);
    entry.priority = static_cast<protocol::Priority>(priority);
    entry.kind = static_cast<protocol::Kind>(kind);
    entry.state = MessageState::dead;
    entry.timestamp_ms = row.column_uint(6);
    entry.expires_ms = row.column_uint(7);
    entry.attempts = static_cast<std::uint32_t>(row.column_int(9));
    entry.dead_reason = row.column_text(10);
    entry.dead_at_ms = row.column_uint(11);
    entry.payload_bytes = static_cast<std::size_t>(row.column_int(12));

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

[[nodiscard]] QueueEntry entry_of(const OutboundMessage& message) {
    QueueEntry entry;
    entry.id = message.id;
    entry.channel = message.channel;
    entry.priority = message.priority;
    entry.kind = message.kind;
    entry.timestamp_ms = message.timestamp_ms;
    entry.expires_ms = message.expires_ms;
    entry.payload_bytes = message.payload.size();
    return entry;
}

// Inserts one row of `messages` (one channel, one priority): its seq.
[[nodiscard]] Result<std::int64_t> insert_row(Database& database, const std::vector<const OutboundMessage*>& messages,
                                              std::size_t first, std::size_t count) {
    WireWriter body;
    for (std::size_t i = first; i < first + count; ++i) encode_message(body, *messages[i]);
    auto lease =
        database.cached("INSERT INTO messages (id, channel, priority, count, body) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!lease) return lease.take_error();
    auto& insert = **lease;
    const auto& head = *messages[first];
    insert.bind(1, ByteView(head.id))
        .bind(2, std::string_view(head.channel))
        .bind(3, static_cast<int>(head.priority))
        .bind(4, static_cast<std::int64_t>(count))
        .bind(5, ByteView(body.bytes()));
    if (auto inserted = insert.run(); !inserted) return inserted.take_error();
    return database.last_insert_rowid();
}

[[nodiscard]] Result<void> insert_dead(Database& database, const OutboundMessage& message, std::uint32_t attempts,
                                       std::string_view reason, std::uint64_t now_ms) {
    auto lease = database.cached(
        "INSERT OR REPLACE INTO dead_letters (id, channel, priority, kind, correlation, headers, timestamp_ms, "
        "expires_ms, payload, attempts, dead_reason, dead_at_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!lease) return lease.take_error();
    auto& insert = **lease;
    insert.bind(1, ByteView(message.id))
        .bind(2, std::string_view(message.channel))
        .bind(3, static_cast<int>(message.priority))
        .bind(4, static_cast<int>(message.kind))
        .bind(5, ByteView(message.correlation))
        .bind(6, ByteView(encode_headers(message.headers)))
        .bind(7, message.timestamp_ms)
        .bind(8, message.expires_ms)
        .bind(9, ByteView(message.payload))
        .bind(10, static_cast<std::int64_t>(attempts))
        .bind(11, reason)
        .bind(12, now_ms);
    return insert.run();
}

[[nodiscard]] Result<void> forget_backoff(Database& database, const protocol::MessageId& id) {
    auto lease = database.cached("DELETE FROM retries WHERE id = ?1");
    if (!lease) return lease.take_error();
    (*lease)->bind(1, ByteView(id));
    return (*lease)->run();
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
    : database_(std::move(database)),
      limits_(limits),
      options_(std::move(options)),
      index_(0, PositionHash{this}, PositionEqual{this}) {}

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
    if (auto loaded = queue->load(); !loaded) return loaded.take_error();
    return queue;
}

Result<void> SqliteOutboundQueue::load() {
    // After a rolled-back transaction, what the file says wins; what was in flight and is
    // still queued stays in flight (its answer will come).
    auto in_flight = std::move(in_flight_);
    in_flight_.clear();
    index_.clear();
    clear_rows();
    for (auto& ready : ready_) ready.clear();
    backoffs_.clear();
    waiting_ = dead_ = 0;
    live_bytes_ = 0;
    next_expiry_ms_ = 0;
    {
        // Read in rowid order, never through the id index (a damaged index is the integrity
        // check's to find, not a reason to misread the queue).
        auto statement = database_->prepare(
            "SELECT m.seq, m.channel, m.priority, m.count, m.body, d.done FROM messages AS m "
            "LEFT JOIN messages_done AS d ON d.seq = m.seq ORDER BY m.seq");
        if (!statement) return statement.take_error();
        for (;;) {
            auto row = statement->step();
            if (!row) return row.take_error();
            if (!*row) break;
            const auto seq = statement->column_int(0);
            const auto priority = statement->column_int(2);
            const auto count = statement->column_int(3);
            if (!valid_priority(priority) || count <= 0 || seq <= 0 || seq > kMaxSeq ||
                count > static_cast<std::int64_t>(kMaxRowMessages)) {
                return corrupt_row(*database_);
            }
            const auto channel = statement->column_text(1);
            std::vector<OutboundMessage> messages;
            if (!decode_body(statement->column_blob_view(4), static_cast<std::size_t>(count), channel,
                             static_cast<protocol::Priority>(priority), messages)) {
                return corrupt_row(*database_);
            }
            const auto done = statement->column_blob_view(5);
            if (!done.empty() && done.size() != messages.size()) return corrupt_row(*database_);
            std::vector<const OutboundMessage*> pointers;
            for (const auto& message : messages) pointers.push_back(&message);
            index_row(seq, pointers);
            auto& stored = this->row(seq);
            stored.marked = !done.empty();
            for (std::size_t i = 0; i < messages.size(); ++i) {
                const Position at{seq, static_cast<std::uint32_t>(i)};
                if (!done.empty() && done[i] != 0) {
                    set_done(at);
                    index_.erase(messages[i].id);
                } else if (in_flight.count(messages[i].id) != 0) {
                    auto& slot = stored.slots[i];
                    slot.set_state(SlotState::in_flight);
                    --stored.waiting;
                    --waiting_;
                    in_flight_.emplace(messages[i].id, at);
                }
            }
            if (stored.waiting == 0) ready_[static_cast<std::size_t>(stored.priority)].erase(seq);
            if (stored.live == 0) erase_row(seq);  // every message done, the row not yet deleted
        }
    }
    {
        auto statement = database_->prepare("SELECT id, attempts, next_attempt_ms FROM retries");
        if (!statement) return statement.take_error();
        for (;;) {
            auto row = statement->step();
            if (!row) return row.take_error();
            if (!*row) break;
            protocol::MessageId id{};
            if (!read_id(statement->column_blob_view(0), id)) return corrupt_row(*database_);
            const auto at = find(id);
            if (!at) continue;
            backoffs_[*at] = Backoff{static_cast<std::uint32_t>(statement->column_int(1)), statement->column_uint(2)};
        }
    }
    auto dead = database_->query_int("SELECT count(*) FROM dead_letters");
    if (!dead) return dead.take_error();
    dead_ = static_cast<std::size_t>(*dead);
    return {};
}

SqliteOutboundQueue::Row& SqliteOutboundQueue::add_row(std::int64_t seq) {
    auto& added = rows_[seq];
    row_at_[seq] = &added;
    return added;
}

void SqliteOutboundQueue::erase_row(std::int64_t seq) {
    row_at_.erase(seq);
    rows_.erase(seq);
}

void SqliteOutboundQueue::clear_rows() {
    row_at_.clear();
    rows_.clear();
}

void SqliteOutboundQueue::index_row(std::int64_t seq, const std::vector<const OutboundMessage*>& messages) {
    auto& row = add_row(seq);
    row.channel = messages.front()->channel;
    row.priority = messages.front()->priority;
    row.slots.reserve(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& message = *messages[i];
        Slot slot;
        slot.id = message.id;
        slot.payload_bytes = static_cast<std::uint32_t>(message.payload.size());
        slot.wire_bytes =
            static_cast<std::uint32_t>(protocol::encoded_message_bytes(message.headers, message.payload.size()));
        row.slots.push_back(slot);
        if (message.expires_ms != 0) {
            if (!row.expiries) row.expiries = std::make_unique<std::uint64_t[]>(messages.size());
            row.expiries[i] = message.expires_ms;
        }
        // A later copy of an id stands for it, as the file is read in order.
        const auto packed = pack(Position{seq, static_cast<std::uint32_t>(i)});
        if (const auto [existing, inserted] = index_.insert(packed); !inserted) {
            index_.erase(existing);
            index_.insert(packed);
        }
        live_bytes_ += message.payload.size();
        if (message.expires_ms != 0 && next_expiry_ms_ != 0)
            next_expiry_ms_ = std::min(next_expiry_ms_, message.expires_ms);
    }
    row.live = row.waiting = messages.size();
    waiting_ += messages.size();
    ready_[static_cast<std::size_t>(row.priority)].insert(seq);
}

// A message of the index, waiting again (it was in flight).
void SqliteOutboundQueue::set_waiting(const Position& at) {
    auto& row = this->row(at.seq);
    auto& slot = row.slots[at.index];
    if (slot.state() != SlotState::in_flight) return;
    slot.set_state(SlotState::waiting);
    ++row.waiting;
    ++waiting_;
    row.first_waiting = std::min(row.first_waiting, at.index);
    ready_[static_cast<std::size_t>(row.priority)].insert(at.seq);
    if (row.expires_ms(at.index) != 0) next_expiry_ms_ = 0;  // waiting again, with its expiry
}

// A message of the index, done: acknowledged, removed or a dead letter. Its id stays in the
// index until the caller erases it (the caller knows it). The row stays until write_done.
void SqliteOutboundQueue::set_done(const Position& at) {
    auto& row = this->row(at.seq);
    auto& slot = row.slots[at.index];
    if (slot.state() == SlotState::done) return;
    if (slot.state() == SlotState::waiting) {
        --row.waiting;
        --waiting_;
        if (row.waiting == 0) ready_[static_cast<std::size_t>(row.priority)].erase(at.seq);
    }
    slot.set_state(SlotState::done);
    --row.live;
    live_bytes_ -= slot.payload_bytes;
    backoffs_.erase(at);
}

Result<void> SqliteOutboundQueue::write_done(const std::set<std::int64_t>& rows) {
    for (const auto seq : rows) {
        auto* found = find_row(seq);
        if (found == nullptr) continue;
        auto& row = *found;
        if (row.live == 0) {
            auto erase = database_->cached("DELETE FROM messages WHERE seq = ?1");
            if (!erase) return erase.take_error();
            (*erase)->bind(1, seq);
            if (auto erased = (*erase)->run(); !erased) return erased;
            if (row.marked) {
                auto unmark = database_->cached("DELETE FROM messages_done WHERE seq = ?1");
                if (!unmark) return unmark.take_error();
                (*unmark)->bind(1, seq);
                if (auto unmarked = (*unmark)->run(); !unmarked) return unmarked;
            }
            continue;
        }
        Bytes done(row.slots.size(), 0);
        for (std::size_t i = 0; i < row.slots.size(); ++i) done[i] = row.slots[i].state() == SlotState::done ? 1 : 0;
        auto mark = database_->cached("INSERT OR REPLACE INTO messages_done (seq, done) VALUES (?1, ?2)");
        if (!mark) return mark.take_error();
        (*mark)->bind(1, seq).bind(2, ByteView(done));
        if (auto marked = (*mark)->run(); !marked) return marked;
        row.marked = true;
    }
    // The rows are gone from the file (their commit is the caller's): gone from the index too.
    for (const auto seq : rows) {
        const auto* found = find_row(seq);
        if (found != nullptr && found->live == 0) erase_row(seq);
    }
    return {};
}

Result<std::vector<OutboundMessage>> SqliteOutboundQueue::read_row(std::int64_t seq) const {
    const auto* found = find_row(seq);
    if (found == nullptr) return std::vector<OutboundMessage>{};
    auto lease = database_->cached("SELECT body FROM messages WHERE seq = ?1");
    if (!lease) return lease.take_error();
    auto& select = **lease;
    select.bind(1, seq);
    auto row = select.step();
    if (!row) return row.take_error();
    if (!*row) return corrupt_row(*database_);
    std::vector<OutboundMessage> out;
    if (!decode_body(select.column_blob_view(0), found->slots.size(), found->channel, found->priority, out)) {
        return corrupt_row(*database_);
    }
    return out;
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

Result<void> SqliteOutboundQueue::insert_rows(const std::vector<const OutboundMessage*>& messages) {
    std::vector<std::pair<std::int64_t, std::pair<std::size_t, std::size_t>>> inserted;
    for (std::size_t first = 0; first < messages.size();) {
        std::size_t count = 1;
        std::size_t bytes = messages[first]->payload.size();
        while (first + count < messages.size() && count < kMaxRowMessages &&
               bytes + messages[first + count]->payload.size() <= kMaxRowBytes &&
               messages[first + count]->channel == messages[first]->channel &&
               messages[first + count]->priority == messages[first]->priority) {
            bytes += messages[first + count]->payload.size();
            ++count;
        }
        auto seq = insert_row(*database_, messages, first, count);
        if (!seq) return seq.take_error();
        if (*seq > kMaxSeq) {
            return make_error(ExitCode::failure, "{}: the queue's row numbers are used up; purge the queue",
                              database_->path().string());
        }
        inserted.push_back({*seq, {first, count}});
        first += count;
    }
    // Indexed as they are written: a commit that fails after this reloads (load()).
    for (const auto& [seq, range] : inserted) {
        index_row(seq, std::vector<const OutboundMessage*>(
                           messages.begin() + static_cast<std::ptrdiff_t>(range.first),
                           messages.begin() + static_cast<std::ptrdiff_t>(range.first + range.second)));
    }
    return {};
}

Result<void> SqliteOutboundQueue::push_many(const std::vector<OutboundMessage>& messages) {
    if (messages.empty()) return {};
    // A message whose id is queued already is not queued twice (nor twice within the group).
    std::vector<const OutboundMessage*> fresh;
    fresh.reserve(messages.size());
    boost::unordered_flat_set<protocol::MessageId, protocol::MessageIdHash> seen;
    if (messages.size() > 1) seen.reserve(messages.size());
    std::uint64_t bytes = 0;
    for (const auto& message : messages) {
        if (index_.contains(message.id)) continue;
        if (messages.size() > 1 && !seen.insert(message.id).second) continue;
        fresh.push_back(&message);
        bytes += message.payload.size();
    }
    const auto live = waiting_ + in_flight_.size();
    if (live + fresh.size() > limits_.max_messages || live_bytes_ + bytes > limits_.max_bytes) {
        return make_error(ExitCode::failure, "queue full ({} messages / {} bytes, limit {} messages / {} bytes)", live,
                          live_bytes_, limits_.max_messages, limits_.max_bytes);
    }
    if (fresh.empty()) return {};
    // Fsync'd unless every message is a request, reply or heartbeat (protocol::short_lived).
    auto transaction =
        database_->begin(protocol::any_needs_fsync(messages) ? Durability::power_loss : Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        if (auto inserted = insert_rows(fresh); !inserted) return inserted;
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    return {};
}

// ---- sending ----

Result<std::vector<OutboundMessage>> SqliteOutboundQueue::take_batch(const BatchLimits& limits, std::uint64_t now_ms,
                                                                     std::vector<OutboundMessage>& expired) {
    std::vector<OutboundMessage> batch;
    if (waiting_ == 0) return batch;
    const std::size_t max_messages = std::max<std::size_t>(limits.max_messages, 1);
    std::vector<Position> taken;
    std::vector<Position> newly_expired;
    std::uint64_t batch_bytes = 0;
    const std::string* channel = nullptr;

    for (std::size_t priority = 0; priority < kPriorities && taken.empty(); ++priority) {
        bool full = false;
        for (const auto seq : ready_[priority]) {
            auto& row = this->row(seq);
            if (channel != nullptr && row.channel != *channel) break;
            for (auto i = row.first_waiting; i < row.slots.size(); ++i) {
                const auto& slot = row.slots[i];
                if (slot.state() != SlotState::waiting) continue;
                const Position at{seq, i};
                if (const auto expires = row.expires_ms(i); expires != 0 && expires <= now_ms) {
                    newly_expired.push_back(at);
                    continue;
                }
                if (const auto backoff = backoffs_.find(at);
                    backoff != backoffs_.end() && backoff->second.next_attempt_ms > now_ms) {
                    continue;  // backing off: does not hold the others
                }
                if (!taken.empty() &&
                    (taken.size() >= max_messages || batch_bytes + slot.wire_bytes > limits.max_bytes)) {
                    full = true;
                    break;
                }
                channel = &row.channel;
                batch_bytes += slot.wire_bytes;
                taken.push_back(at);
            }
            if (full) break;
        }
    }

    // The payloads come from the file, one read per row.
    std::map<std::int64_t, std::vector<OutboundMessage>> bodies;
    const auto message_at = [&](const Position& at) -> Result<OutboundMessage*> {
        auto found = bodies.find(at.seq);
        if (found == bodies.end()) {
            auto read = read_row(at.seq);
            if (!read) return read.take_error();
            found = bodies.emplace(at.seq, std::move(*read)).first;
        }
        if (at.index >= found->second.size()) return corrupt_row(*database_);
        return &found->second[at.index];
    };
    if (!newly_expired.empty()) {
        if (auto dead = make_dead(newly_expired, "expired", now_ms, nullptr, &expired); !dead) return dead.take_error();
    }
    batch.reserve(taken.size());
    for (const auto& at : taken) {
        auto message = message_at(at);
        if (!message) return message.take_error();
        batch.push_back(std::move(**message));
    }
    for (std::size_t i = 0; i < taken.size(); ++i) {
        const auto& at = taken[i];
        auto& row = this->row(at.seq);
        auto& slot = row.slots[at.index];
        slot.set_state(SlotState::in_flight);
        --row.waiting;
        --waiting_;
        if (row.waiting == 0) ready_[static_cast<std::size_t>(row.priority)].erase(at.seq);
        in_flight_.emplace(batch[i].id, at);
    }
    // No slot before the first one taken or passed over waits any more, unless backing off.
    for (const auto& at : taken) {
        auto* found = find_row(at.seq);
        if (found == nullptr) continue;
        auto& row = *found;
        while (row.first_waiting < row.slots.size() && row.slots[row.first_waiting].state() != SlotState::waiting)
            ++row.first_waiting;
    }
    return batch;
}

Result<void> SqliteOutboundQueue::make_dead(const std::vector<Position>& at, std::string_view reason,
                                            std::uint64_t now_ms, const std::map<Position, std::string>* reasons,
                                            std::vector<OutboundMessage>* out) {
    if (at.empty()) return {};
    std::map<std::int64_t, std::vector<OutboundMessage>> bodies;
    std::vector<OutboundMessage> made;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        std::set<std::int64_t> touched;
        for (const auto& position : at) {
            auto found = bodies.find(position.seq);
            if (found == bodies.end()) {
                auto read = read_row(position.seq);
                if (!read) return read.take_error();
                found = bodies.emplace(position.seq, std::move(*read)).first;
            }
            if (position.index >= found->second.size()) return corrupt_row(*database_);
            auto& message = found->second[position.index];
            const auto backoff = backoffs_.find(position);
            const std::uint32_t attempts = backoff == backoffs_.end() ? 0 : backoff->second.attempts;
            std::string_view why = reason;
            if (reasons != nullptr) {
                if (const auto own = reasons->find(position); own != reasons->end()) why = own->second;
            }
            if (auto inserted = insert_dead(*database_, message, attempts, why, now_ms); !inserted) return inserted;
            if (backoff != backoffs_.end()) {
                if (auto forgotten = forget_backoff(*database_, message.id); !forgotten) return forgotten;
            }
            const bool was_in_flight = slot(position).state() == SlotState::in_flight;
            set_done(position);
            index_.erase(message.id);
            if (was_in_flight) in_flight_.erase(message.id);
            ++dead_;
            touched.insert(position.seq);
            made.push_back(message);
        }
        if (auto done = write_done(touched); !done) return done;
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    if (out != nullptr) {
        for (auto& message : made) {
            message.payload.clear();
            out->push_back(std::move(message));
        }
    }
    if (dead_ > limits_.max_dead_letters) (void)prune_dead_letters();  // best effort; retried next time
    return {};
}

Result<void> SqliteOutboundQueue::acknowledge(const std::vector<protocol::MessageId>& ids) {
    if (ids.empty()) return {};
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    std::size_t removed_dead = 0;
    auto written = [&]() -> Result<void> {
        std::set<std::int64_t> touched;
        for (const auto& id : ids) {
            if (const auto found = index_.find(id); found != index_.end()) {
                const auto at = unpack(*found);
                set_done(at);
                touched.insert(at.seq);
                if (backoffs_.count(at) != 0) {
                    if (auto forgotten = forget_backoff(*database_, id); !forgotten) return forgotten;
                }
                in_flight_.erase(id);
                index_.erase(found);
                continue;
            }
            if (dead_ == 0) continue;
            // Not queued: a dead letter removed by the operator, or acknowledged twice.
            auto lease = database_->cached("DELETE FROM dead_letters WHERE id = ?1");
            if (!lease) return lease.take_error();
            (*lease)->bind(1, ByteView(id));
            if (auto removed = (*lease)->run(); !removed) return removed;
            removed_dead += static_cast<std::size_t>(database_->changes());
        }
        if (auto done = write_done(touched); !done) return done;
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    dead_ -= std::min(dead_, removed_dead);
    return {};
}

Result<void> SqliteOutboundQueue::dead_letter(const std::vector<protocol::MessageId>& ids, std::string_view reason,
                                              std::uint64_t now_ms) {
    std::vector<Position> at;
    for (const auto& id : ids) {
        if (const auto found = find(id)) at.push_back(*found);
    }
    std::sort(at.begin(), at.end());
    at.erase(
        std::unique(at.begin(), at.end(), [](const Position& a, const Position& b) { return !(a < b) && !(b < a); }),
        at.end());
    return make_dead(at, reason, now_ms, nullptr, nullptr);
}

Result<void> SqliteOutboundQueue::prune_dead_letters() {
    // In steps of a tenth of the limit, so a full dead-letter list does not cost a sort per message.
    const std::size_t keep = limits_.max_dead_letters - limits_.max_dead_letters / 10;
    if (dead_ <= keep) return {};
    auto statement = database_->prepare(
        "DELETE FROM dead_letters WHERE seq IN "
        "(SELECT seq FROM dead_letters ORDER BY dead_at_ms, seq LIMIT ?1)");
    if (!statement) return statement.take_error();
    statement->bind(1, static_cast<std::int64_t>(dead_ - keep));
    if (auto pruned = statement->run(); !pruned) return pruned;
    dead_ -= static_cast<std::size_t>(database_->changes());
    return {};
}

Result<void> SqliteOutboundQueue::release(const std::vector<protocol::MessageId>& ids, std::uint64_t now_ms,
                                          std::string_view last_reason) {
    if (ids.empty()) return {};
    const auto max_attempts = options_.backoff.max_attempts;
    std::vector<Position> given_up;
    std::map<Position, std::string> reasons;
    std::vector<std::pair<protocol::MessageId, Backoff>> released;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        auto lease =
            database_->cached("INSERT OR REPLACE INTO retries (id, attempts, next_attempt_ms) VALUES (?1, ?2, ?3)");
        if (!lease) return lease.take_error();
        for (const auto& id : ids) {
            const auto flight = in_flight_.find(id);
            if (flight == in_flight_.end()) continue;
            const auto at = flight->second;
            const auto backoff = backoffs_.find(at);
            const std::uint32_t attempts = (backoff == backoffs_.end() ? 0 : backoff->second.attempts) + 1;
            if (max_attempts != 0 && attempts >= max_attempts) {
                backoffs_[at].attempts = attempts;  // kept with the dead letter
                given_up.push_back(at);
                reasons[at] = last_reason.empty() ? fmt::format("gave up after {} attempts", attempts)
                                                  : fmt::format("gave up after {} attempts: {}", attempts, last_reason);
                continue;
            }
            const Backoff next{attempts, now_ms + retry_delay(attempts)};
            auto& update = **lease;
            update.reset();
            update.bind(1, ByteView(id)).bind(2, static_cast<std::int64_t>(attempts)).bind(3, next.next_attempt_ms);
            if (auto updated = update.run(); !updated) return updated;
            released.emplace_back(id, next);
        }
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    for (const auto& [id, backoff] : released) {
        const auto at = in_flight_.at(id);
        backoffs_[at] = backoff;
        in_flight_.erase(id);
        set_waiting(at);
    }
    return make_dead(given_up, "", now_ms, &reasons, nullptr);
}

Result<void> SqliteOutboundQueue::defer(const std::vector<protocol::MessageId>& ids, std::uint64_t until_ms) {
    if (ids.empty()) return {};
    std::vector<std::pair<protocol::MessageId, Position>> deferred;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        auto lease =
            database_->cached("INSERT OR REPLACE INTO retries (id, attempts, next_attempt_ms) VALUES (?1, ?2, ?3)");
        if (!lease) return lease.take_error();
        for (const auto& id : ids) {
            const auto flight = in_flight_.find(id);
            if (flight == in_flight_.end()) continue;
            const auto backoff = backoffs_.find(flight->second);
            const std::uint32_t attempts = backoff == backoffs_.end() ? 0 : backoff->second.attempts;
            auto& update = **lease;
            update.reset();
            update.bind(1, ByteView(id)).bind(2, static_cast<std::int64_t>(attempts)).bind(3, until_ms);
            if (auto updated = update.run(); !updated) return updated;
            deferred.emplace_back(id, flight->second);
        }
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    for (const auto& [id, at] : deferred) {
        backoffs_[at].next_attempt_ms = until_ms;
        in_flight_.erase(id);
        set_waiting(at);
    }
    return {};
}

Result<void> SqliteOutboundQueue::undefer_channel(const std::string& channel) {
    std::vector<protocol::MessageId> due;
    for (const auto packed : index_) {
        const auto at = unpack(packed);
        const auto& id = id_at(packed);
        const auto backoff = backoffs_.find(at);
        if (backoff == backoffs_.end() || backoff->second.next_attempt_ms == 0) continue;
        const auto& row = this->row(at.seq);
        if (row.channel != channel || row.slots[at.index].state() != SlotState::waiting) continue;
        due.push_back(id);
    }
    if (due.empty()) return {};
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        auto lease = database_->cached("UPDATE retries SET next_attempt_ms = 0 WHERE id = ?1");
        if (!lease) return lease.take_error();
        for (const auto& id : due) {
            auto& update = **lease;
            update.reset();
            update.bind(1, ByteView(id));
            if (auto updated = update.run(); !updated) return updated;
        }
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    for (const auto& id : due) backoffs_[*find(id)].next_attempt_ms = 0;
    return {};
}

void SqliteOutboundQueue::release_in_flight() {
    for (const auto& [id, at] : in_flight_) set_waiting(at);
    in_flight_.clear();
}

Result<void> SqliteOutboundQueue::expire_due(std::uint64_t now_ms, std::vector<OutboundMessage>& expired) {
    if (waiting_ == 0 || now_ms < next_expiry_ms_) return {};
    std::vector<Position> due;
    bool due_in_flight = false;
    std::uint64_t next_expiry = std::numeric_limits<std::uint64_t>::max();
    for (const auto& [seq, row] : rows_) {
        if (!row.expiries) continue;
        for (std::uint32_t i = 0; i < row.slots.size(); ++i) {
            const auto& slot = row.slots[i];
            const auto expires = row.expiries[i];
            if (expires == 0 || slot.state() == SlotState::done) continue;
            if (expires > now_ms) {
                if (slot.state() == SlotState::waiting) next_expiry = std::min(next_expiry, expires);
            } else if (slot.state() == SlotState::in_flight) {
                due_in_flight = true;  // its answer decides
            } else {
                due.push_back(Position{seq, i});
            }
        }
    }
    if (auto dead = make_dead(due, "expired", now_ms, nullptr, &expired); !dead) return dead;
    next_expiry_ms_ = due_in_flight ? 0 : next_expiry;
    return {};
}

// ---- operator API ----

Result<std::vector<QueueEntry>> SqliteOutboundQueue::dead_entries(std::optional<protocol::Priority> priority,
                                                                  std::size_t limit) const {
    auto statement = database_->prepare(fmt::format(
        "SELECT {} FROM dead_letters WHERE ?1 IS NULL OR priority = ?1 ORDER BY priority, seq", kDeadListColumns));
    if (!statement) return statement.take_error();
    if (priority) {
        statement->bind(1, static_cast<int>(*priority));
    } else {
        statement->bind_null(1);
    }
    std::vector<QueueEntry> out;
    while (limit == 0 || out.size() < limit) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) break;
        auto stored = read_dead(*statement, *database_);
        if (!stored) return stored.take_error();
        out.push_back(std::move(stored->entry));
    }
    return out;
}

Result<std::vector<QueueEntry>> SqliteOutboundQueue::list(std::optional<MessageState> state, std::size_t limit) const {
    std::vector<QueueEntry> out;
    const auto full = [&] { return limit != 0 && out.size() >= limit; };
    for (std::size_t priority = 0; priority < kPriorities && !full(); ++priority) {
        if (!state || *state != MessageState::dead) {
            for (const auto& [seq, row] : rows_) {
                if (full()) break;
                if (static_cast<std::size_t>(row.priority) != priority) continue;
                bool wanted = false;
                for (const auto& slot : row.slots) {
                    const auto slot_state =
                        slot.state() == SlotState::in_flight ? MessageState::in_flight : MessageState::waiting;
                    if (slot.state() != SlotState::done && (!state || *state == slot_state)) wanted = true;
                }
                if (!wanted) continue;
                auto messages = read_row(seq);
                if (!messages) return messages.take_error();
                for (std::uint32_t i = 0; i < row.slots.size() && !full(); ++i) {
                    const auto& slot = row.slots[i];
                    if (slot.state() == SlotState::done) continue;
                    auto entry = entry_of((*messages)[i]);
                    entry.state =
                        slot.state() == SlotState::in_flight ? MessageState::in_flight : MessageState::waiting;
                    if (state && *state != entry.state) continue;
                    if (const auto backoff = backoffs_.find(Position{seq, i}); backoff != backoffs_.end()) {
                        entry.attempts = backoff->second.attempts;
                        entry.next_attempt_ms = backoff->second.next_attempt_ms;
                    }
                    out.push_back(std::move(entry));
                }
            }
        }
        if (!state || *state == MessageState::dead) {
            if (full()) break;
            auto dead = dead_entries(static_cast<protocol::Priority>(priority), limit == 0 ? 0 : limit - out.size());
            if (!dead) return dead.take_error();
            for (auto& entry : *dead) out.push_back(std::move(entry));
        }
    }
    return out;
}

Result<std::optional<StoredMessage>> SqliteOutboundQueue::get(const protocol::MessageId& id) const {
    if (const auto found = find(id)) {
        const auto at = *found;
        auto messages = read_row(at.seq);
        if (!messages) return messages.take_error();
        if (at.index >= messages->size()) return corrupt_row(*database_);
        StoredMessage out;
        out.message = std::move((*messages)[at.index]);
        out.entry = entry_of(out.message);
        out.entry.state = slot(at).state() == SlotState::in_flight ? MessageState::in_flight : MessageState::waiting;
        if (const auto backoff = backoffs_.find(at); backoff != backoffs_.end()) {
            out.entry.attempts = backoff->second.attempts;
            out.entry.next_attempt_ms = backoff->second.next_attempt_ms;
        }
        return std::optional<StoredMessage>{std::move(out)};
    }
    if (dead_ == 0) return std::optional<StoredMessage>{};
    auto statement = database_->prepare(fmt::format("SELECT {} FROM dead_letters WHERE id = ?1", kDeadColumns));
    if (!statement) return statement.take_error();
    statement->bind(1, ByteView(id));
    auto row = statement->step();
    if (!row) return row.take_error();
    if (!*row) return std::optional<StoredMessage>{};
    auto stored = read_dead(*statement, *database_);
    if (!stored) return stored.take_error();
    return std::optional<StoredMessage>{std::move(*stored)};
}

Result<void> SqliteOutboundQueue::retry(const protocol::MessageId& id, std::uint64_t now_ms,
                                        std::uint64_t fresh_ttl_ms) {
    auto current = get(id);
    if (!current) return current.take_error();
    if (!*current) return make_error(ExitCode::failure, "no message {} in the queue", hex(id));
    // Named references, not a structured binding: the lambda below captures them.
    const QueueEntry& entry = (*current)->entry;
    OutboundMessage& message = (*current)->message;
    if (entry.state == MessageState::in_flight) {
        return make_error(ExitCode::failure, "message {} is being sent; it is retried if the gateway does not store it",
                          hex(id));
    }
    const bool expired = entry.expires_ms != 0 && entry.expires_ms <= now_ms;
    if (expired && fresh_ttl_ms == 0) {
        return make_error(ExitCode::refused,
                          "message {} expired {} ms ago: it would expire again at once, so it is not retried "
                          "(give it a fresh TTL to send it)",
                          hex(id), now_ms - entry.expires_ms);
    }
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        if (entry.state == MessageState::waiting && !expired) {
            // Due now, attempts reset, where it is in the queue.
            const auto at = *find(id);
            if (backoffs_.count(at) != 0) {
                if (auto forgotten = forget_backoff(*database_, id); !forgotten) return forgotten;
                backoffs_.erase(at);
            }
            return transaction->commit();
        }
        // A dead letter, or a waiting message with a fresh expiry: queued again as a row of its own.
        if (entry.state == MessageState::waiting) {
            const auto at = *find(id);
            if (backoffs_.count(at) != 0) {
                if (auto forgotten = forget_backoff(*database_, id); !forgotten) return forgotten;
            }
            set_done(at);
            index_.erase(id);
            if (auto done = write_done({at.seq}); !done) return done;
        } else {
            auto lease = database_->cached("DELETE FROM dead_letters WHERE id = ?1");
            if (!lease) return lease.take_error();
            (*lease)->bind(1, ByteView(id));
            if (auto removed = (*lease)->run(); !removed) return removed;
            --dead_;
        }
        if (expired) message.expires_ms = now_ms + fresh_ttl_ms;
        if (auto inserted = insert_rows({&message}); !inserted) return inserted;
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written;
    }
    return {};
}

Result<SqliteOutboundQueue::Retried> SqliteOutboundQueue::retry_dead(std::uint64_t now_ms, std::uint64_t fresh_ttl_ms) {
    Retried out;
    std::vector<OutboundMessage> again;
    {
        auto statement =
            database_->prepare(fmt::format("SELECT {} FROM dead_letters ORDER BY priority, seq", kDeadColumns));
        if (!statement) return statement.take_error();
        for (;;) {
            auto row = statement->step();
            if (!row) return row.take_error();
            if (!*row) break;
            auto stored = read_dead(*statement, *database_);
            if (!stored) return stored.take_error();
            auto& message = stored->message;
            if (message.expires_ms != 0 && message.expires_ms <= now_ms) {
                if (fresh_ttl_ms == 0) {
                    ++out.expired;  // stays dead
                    continue;
                }
                message.expires_ms = now_ms + fresh_ttl_ms;
            }
            again.push_back(std::move(message));
        }
    }
    if (again.empty()) return out;
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    auto written = [&]() -> Result<void> {
        auto lease = database_->cached("DELETE FROM dead_letters WHERE id = ?1");
        if (!lease) return lease.take_error();
        std::vector<const OutboundMessage*> fresh;
        for (const auto& message : again) {
            auto& remove = **lease;
            remove.reset();
            remove.bind(1, ByteView(message.id));
            if (auto removed = remove.run(); !removed) return removed;
            if (!index_.contains(message.id)) fresh.push_back(&message);
        }
        if (auto inserted = insert_rows(fresh); !inserted) return inserted;
        return transaction->commit();
    }();
    if (!written) {
        (void)load();
        return written.take_error();
    }
    dead_ -= std::min(dead_, again.size());
    out.count = again.size();
    return out;
}

Result<void> SqliteOutboundQueue::remove(const protocol::MessageId& id) {
    auto existing = get(id);
    if (!existing) return existing.take_error();
    if (!*existing) return make_error(ExitCode::failure, "no message {} in the queue", hex(id));
    return acknowledge({id});
}

Result<std::size_t> SqliteOutboundQueue::purge_dead() {
    if (auto purged = database_->exec("DELETE FROM dead_letters"); !purged) return purged.take_error();
    const auto count = static_cast<std::size_t>(database_->changes());
    dead_ = 0;
    return count;
}

Result<std::size_t> SqliteOutboundQueue::purge_all() {
    const auto count = index_.size() + dead_;
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    if (auto purged = database_->exec(
            "DELETE FROM messages; DELETE FROM messages_done; DELETE FROM retries; DELETE FROM dead_letters");
        !purged) {
        return purged.take_error();
    }
    if (auto committed = transaction->commit(); !committed) return committed.take_error();
    index_.clear();
    clear_rows();
    for (auto& ready : ready_) ready.clear();
    backoffs_.clear();
    in_flight_.clear();
    waiting_ = dead_ = 0;
    live_bytes_ = 0;
    next_expiry_ms_ = 0;
    return count;
}

Result<QueueStats> SqliteOutboundQueue::stats() const {
    QueueStats out;
    out.waiting = waiting_;
    out.in_flight = in_flight_.size();
    out.dead = dead_;
    out.bytes = live_bytes_;
    auto dead_bytes = database_->query_int("SELECT total(length(payload)) FROM dead_letters");
    if (!dead_bytes) return dead_bytes.take_error();
    out.dead_bytes = static_cast<std::uint64_t>(*dead_bytes);
    for (const auto& [seq, row] : rows_) {
        if (row.waiting == 0) continue;
        auto messages = read_row(seq);
        if (!messages) return messages.take_error();
        for (std::size_t i = 0; i < row.slots.size(); ++i) {
            if (row.slots[i].state() != SlotState::waiting) continue;
            const auto timestamp = (*messages)[i].timestamp_ms;
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

// ---- schema 1 ----

Result<void> upgrade_outbound_queue_from_schema_1(Database& database) {
    // Schema 1 kept one row per message with its state in the row (renamed messages_schema_1
    // by the caller). Each queued message becomes a row of its own (in its old order), its
    // backoff a retry, each dead letter a dead letter.
    auto statement = database.prepare(
        "SELECT id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload, attempts, "
        "next_attempt_ms, state, dead_reason, dead_at_ms FROM messages_schema_1 ORDER BY seq");
    if (!statement) return statement.take_error();
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) break;
        OutboundMessage message;
        const auto priority = statement->column_int(2);
        const auto kind = statement->column_int(3);
        if (!read_id(statement->column_blob_view(0), message.id) ||
            !read_id(statement->column_blob_view(4), message.correlation) || !valid_priority(priority) || kind < 0 ||
            kind > static_cast<int>(protocol::Kind::heartbeat) ||
            !decode_headers(statement->column_blob_view(5), message.headers)) {
            return corrupt_row(database);
        }
        message.channel = statement->column_text(1);
        message.priority = static_cast<protocol::Priority>(priority);
        message.kind = static_cast<protocol::Kind>(kind);
        message.timestamp_ms = statement->column_uint(6);
        message.expires_ms = statement->column_uint(7);
        message.payload = statement->column_blob(8);
        const auto attempts = static_cast<std::uint32_t>(statement->column_int(9));
        const auto next_attempt_ms = statement->column_uint(10);
        if (statement->column_text(11) == "dead") {
            if (auto kept =
                    insert_dead(database, message, attempts, statement->column_text(12), statement->column_uint(13));
                !kept) {
                return kept;
            }
            continue;
        }
        if (auto inserted = insert_row(database, {&message}, 0, 1); !inserted) return inserted.take_error();
        if (attempts != 0 || next_attempt_ms != 0) {
            auto retry = database.cached("INSERT INTO retries (id, attempts, next_attempt_ms) VALUES (?1, ?2, ?3)");
            if (!retry) return retry.take_error();
            (*retry)
                ->bind(1, ByteView(message.id))
                .bind(2, static_cast<std::int64_t>(attempts))
                .bind(3, next_attempt_ms);
            if (auto kept = (*retry)->run(); !kept) return kept;
        }
    }
    return database.exec("DROP TABLE messages_schema_1");
}

}  // namespace aegis::store
