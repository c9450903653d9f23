#include "store/durable_inbox.h"

#include <algorithm>
#include <utility>

#include "core/wire.h"
#include "store/sqlite.h"
#include "store/state_database.h"

namespace aegis::store {

namespace {

[[nodiscard]] Bytes encode_patterns(const std::vector<std::string>& patterns) {
    WireWriter writer;
    writer.u16(static_cast<std::uint16_t>(patterns.size()));
    for (const auto& pattern : patterns) writer.text16(pattern);
    return writer.take();
}

[[nodiscard]] bool decode_patterns(ByteView bytes, std::vector<std::string>& patterns) {
    WireReader reader(bytes);
    std::uint16_t count = 0;
    if (!reader.u16(count)) return false;
    for (std::uint16_t i = 0; i < count; ++i) {
        std::string pattern;
        if (!reader.text16(pattern)) return false;
        patterns.push_back(std::move(pattern));
    }
    return reader.at_end();
}

[[nodiscard]] Error corrupt(const Database& database, std::string_view what) {
    return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): {} cannot be read",
                      database.path().string(), database.label(), what);
}

[[nodiscard]] Error no_cursor(const std::string& name) {
    return make_error(ExitCode::failure, "no durable subscription named '{}'", name);
}

}  // namespace

DurableInbox::DurableInbox(std::shared_ptr<Database> database, InboxLimits limits)
    : database_(std::move(database)), limits_(limits) {}

DurableInbox::~DurableInbox() = default;

Result<std::unique_ptr<DurableInbox>> DurableInbox::open(const std::filesystem::path& file, InboxLimits limits) {
    auto database = open_state_database(file);
    if (!database) return database.take_error();
    return open(std::move(*database), limits);
}

Result<std::unique_ptr<DurableInbox>> DurableInbox::open(std::shared_ptr<Database> database, InboxLimits limits) {
    std::unique_ptr<DurableInbox> inbox(new DurableInbox(std::move(database), limits));
    if (auto loaded = inbox->load_pending(); !loaded) return loaded.take_error();
    return inbox;
}

Result<void> DurableInbox::load_pending() {
    auto statement =
        database_->prepare("SELECT name, (SELECT count(*) FROM inbox WHERE inbox.cursor = cursors.name) FROM cursors");
    if (!statement) return statement.take_error();
    pending_.clear();
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) return {};
        pending_[statement->column_text(0)] = static_cast<std::size_t>(statement->column_int(1));
    }
}

Result<void> DurableInbox::create_cursor(const std::string& name, const std::vector<std::string>& patterns,
                                         std::uint64_t now_ms) {
    if (name.empty()) return make_error(ExitCode::usage, "a durable subscription needs a name");
    auto statement = database_->prepare(
        "INSERT INTO cursors (name, patterns, created_ms) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (name) DO UPDATE SET patterns = excluded.patterns");
    if (!statement) return statement.take_error();
    statement->bind(1, std::string_view(name)).bind(2, ByteView(encode_patterns(patterns))).bind(3, now_ms);
    if (auto created = statement->run(); !created) return created;
    pending_.try_emplace(name, 0);
    return {};
}

Result<bool> DurableInbox::remove_cursor(const std::string& name) {
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    auto messages = database_->prepare("DELETE FROM inbox WHERE cursor = ?1");
    if (!messages) return messages.take_error();
    messages->bind(1, std::string_view(name));
    if (auto removed = messages->run(); !removed) return removed.take_error();
    auto cursor = database_->prepare("DELETE FROM cursors WHERE name = ?1");
    if (!cursor) return cursor.take_error();
    cursor->bind(1, std::string_view(name));
    if (auto removed = cursor->run(); !removed) return removed.take_error();
    const bool existed = database_->changes() > 0;
    if (auto committed = transaction->commit(); !committed) return committed.take_error();
    pending_.erase(name);
    return existed;
}

Result<std::vector<CursorInfo>> DurableInbox::cursors() const {
    auto statement =
        database_->prepare("SELECT name, patterns, last_seq, dropped, created_ms FROM cursors ORDER BY name");
    if (!statement) return statement.take_error();
    std::vector<CursorInfo> out;
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) return out;
        CursorInfo info;
        info.name = statement->column_text(0);
        if (!decode_patterns(statement->column_blob_view(1), info.patterns)) return corrupt(*database_, "a cursor");
        info.position = statement->column_uint(2);
        info.dropped = statement->column_uint(3);
        info.created_ms = statement->column_uint(4);
        if (const auto it = pending_.find(info.name); it != pending_.end()) info.pending = it->second;
        out.push_back(std::move(info));
    }
}

Result<std::optional<CursorInfo>> DurableInbox::cursor(const std::string& name) const {
    auto all = cursors();
    if (!all) return all.take_error();
    for (auto& info : *all) {
        if (info.name == name) return std::optional<CursorInfo>{std::move(info)};
    }
    return std::optional<CursorInfo>{};
}

std::size_t DurableInbox::pending(const std::string& name) const {
    const auto it = pending_.find(name);
    return it == pending_.end() ? 0 : it->second;
}

Result<std::size_t> DurableInbox::append(const std::vector<std::string>& cursor_names,
                                         const std::vector<InboxEntry>& entries) {
    std::vector<std::string> targets;
    for (const auto& name : cursor_names) {
        if (pending_.count(name) != 0 && std::find(targets.begin(), targets.end(), name) == targets.end()) {
            targets.push_back(name);
        }
    }
    if (targets.empty() || entries.empty()) return std::size_t{0};
    auto counts = pending_;
    std::size_t added_total = 0;
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    for (const auto& name : targets) {
        {
            auto lease = database_->cached(
                "INSERT INTO inbox (cursor, id, channel, envelope) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT (cursor, id) DO NOTHING");
            if (!lease) return lease.take_error();
            for (const auto& entry : entries) {
                (*lease)->reset();
                (*lease)
                    ->bind(1, std::string_view(name))
                    .bind(2, ByteView(entry.id))
                    .bind(3, std::string_view(entry.channel))
                    .bind(4, ByteView(entry.envelope));
                if (auto inserted = (*lease)->run(); !inserted) return inserted.take_error();
                const auto added = static_cast<std::size_t>(database_->changes());
                counts[name] += added;
                added_total += added;
            }
        }
        if (counts[name] > limits_.max_per_cursor) {
            auto trimmed = trim(name);
            if (!trimmed) return trimmed.take_error();
            counts[name] -= *trimmed;
        }
    }
    if (auto committed = transaction->commit(); !committed) return committed.take_error();
    // Inside a transaction of the caller's, the counts go back if that one does not commit.
    std::vector<std::pair<std::string, std::size_t>> before;
    for (const auto& name : targets) before.emplace_back(name, pending_[name]);
    database_->on_outcome([this, before = std::move(before)](bool committed) {
        if (committed) return;
        for (const auto& [name, count] : before) {
            if (const auto it = pending_.find(name); it != pending_.end()) it->second = count;
        }
    });
    pending_ = std::move(counts);
    return added_total;
}

Result<std::size_t> DurableInbox::trim(const std::string& name) {
    auto count = database_->prepare("SELECT count(*) FROM inbox WHERE cursor = ?1");
    if (!count) return count.take_error();
    count->bind(1, std::string_view(name));
    auto row = count->step();
    if (!row) return row.take_error();
    const auto rows = static_cast<std::size_t>(count->column_int(0));
    count->reset();
    if (rows <= limits_.max_per_cursor) return std::size_t{0};
    auto oldest = database_->prepare(
        "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE cursor = ?1 ORDER BY seq LIMIT ?2)");
    if (!oldest) return oldest.take_error();
    oldest->bind(1, std::string_view(name)).bind(2, static_cast<std::int64_t>(rows - limits_.max_per_cursor));
    if (auto removed = oldest->run(); !removed) return removed.take_error();
    const auto dropped = static_cast<std::size_t>(database_->changes());
    auto note = database_->prepare("UPDATE cursors SET dropped = dropped + ?2 WHERE name = ?1");
    if (!note) return note.take_error();
    note->bind(1, std::string_view(name)).bind(2, static_cast<std::int64_t>(dropped));
    if (auto noted = note->run(); !noted) return noted.take_error();
    return dropped;
}

Result<std::vector<InboxItem>> DurableInbox::read_after(const std::string& name, std::uint64_t after,
                                                        std::size_t limit) const {
    if (pending_.count(name) == 0) return no_cursor(name);
    auto statement = database_->prepare(
        "SELECT seq, id, channel, envelope FROM inbox WHERE cursor = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    if (!statement) return statement.take_error();
    statement->bind(1, std::string_view(name))
        .bind(2, after)
        .bind(3, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
    std::vector<InboxItem> out;
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) return out;
        InboxItem item;
        item.sequence = statement->column_uint(0);
        const auto id = statement->column_blob_view(1);
        if (id.size() != item.id.size()) return corrupt(*database_, "an inbox message");
        std::copy(id.begin(), id.end(), item.id.begin());
        item.channel = statement->column_text(2);
        item.envelope = statement->column_blob(3);
        out.push_back(std::move(item));
    }
}

Result<void> DurableInbox::advance(const std::string& name, std::uint64_t sequence) {
    if (pending_.count(name) == 0) return no_cursor(name);
    auto transaction = database_->begin();
    if (!transaction) return transaction.take_error();
    auto position = database_->prepare("UPDATE cursors SET last_seq = max(last_seq, ?2) WHERE name = ?1");
    if (!position) return position.take_error();
    position->bind(1, std::string_view(name)).bind(2, sequence);
    if (auto moved = position->run(); !moved) return moved;
    auto consumed = database_->prepare("DELETE FROM inbox WHERE cursor = ?1 AND seq <= ?2");
    if (!consumed) return consumed.take_error();
    consumed->bind(1, std::string_view(name)).bind(2, sequence);
    if (auto removed = consumed->run(); !removed) return removed;
    const auto removed = static_cast<std::size_t>(database_->changes());
    if (auto committed = transaction->commit(); !committed) return committed;
    auto& pending = pending_[name];
    pending -= std::min(pending, removed);
    return {};
}

}  // namespace aegis::store
