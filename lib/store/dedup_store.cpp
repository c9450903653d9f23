#include "store/dedup_store.h"

#include <algorithm>
#include <utility>

#include "store/sqlite.h"
#include "store/state_database.h"

namespace aegis::store {

namespace {

// Rows kept past the capacity before a prune, so pruning is one DELETE per many inserts.
[[nodiscard]] std::size_t prune_slack(std::size_t capacity) {
    return std::max<std::size_t>(capacity / 10, 64);
}

[[nodiscard]] Error unreadable_id(const Database& database) {
    return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): a delivered id cannot be read",
                      database.path().string(), database.label());
}

}  // namespace

DeliveredIds::DeliveredIds(std::shared_ptr<Database> database, std::size_t capacity)
    : database_(std::move(database)), capacity_(std::max<std::size_t>(capacity, 1)) {}

DeliveredIds::~DeliveredIds() = default;

Result<std::unique_ptr<DeliveredIds>> DeliveredIds::open(const std::filesystem::path& file, std::size_t capacity) {
    auto database = open_state_database(file);
    if (!database) return database.take_error();
    return open(std::move(*database), capacity);
}

Result<std::unique_ptr<DeliveredIds>> DeliveredIds::open(std::shared_ptr<Database> database, std::size_t capacity) {
    std::unique_ptr<DeliveredIds> ids(new DeliveredIds(std::move(database), capacity));
    if (auto loaded = ids->load(); !loaded) return loaded.take_error();
    return ids;
}

Result<void> DeliveredIds::load() {
    auto statement = database_->prepare("SELECT seq, ids FROM delivered ORDER BY seq");
    if (!statement) return statement.take_error();
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) return {};
        const auto blob = statement->column_blob_view(1);
        protocol::MessageId id{};
        if (blob.size() % id.size() != 0) return unreadable_id(*database_);
        const auto count = blob.size() / id.size();
        rows_.push_back(StoredRow{statement->column_int(0), count});
        stored_ids_ += count;
        for (std::size_t i = 0; i < count; ++i) {
            std::copy_n(blob.begin() + static_cast<std::ptrdiff_t>(i * id.size()), id.size(), id.begin());
            admit(id);
        }
    }
}

void DeliveredIds::admit(const protocol::MessageId& id) {
    if (seen_.insert(id).second) push(id);
}

void DeliveredIds::push(const protocol::MessageId& id) {
    order_.push_back(id);
    if (order_.size() > capacity_) {
        seen_.erase(order_.front());
        order_.pop_front();
    }
}

bool DeliveredIds::first_sight(const protocol::MessageId& id) {
    if (!seen_.insert(id).second) return false;  // the one lookup of an id
    push(id);
    pending_.push_back(id);
    return true;
}

Result<void> DeliveredIds::flush() {
    if (pending_.empty()) return {};
    if (auto stored = store(pending_); !stored) return stored;
    // Inside a transaction of the caller's, these ids are stored only if it commits.
    database_->on_outcome([this, ids = std::move(pending_)](bool committed) {
        if (!committed) forget(ids);
    });
    pending_.clear();
    return {};
}

void DeliveredIds::forget_pending() {
    forget(pending_);
    pending_.clear();
}

void DeliveredIds::forget(const std::vector<protocol::MessageId>& ids) {
    if (ids.empty()) return;
    std::size_t forgotten = 0;
    for (const auto& id : ids) forgotten += seen_.erase(id);
    if (forgotten == 0) return;
    order_.erase(std::remove_if(order_.begin(), order_.end(), [&](const auto& id) { return !seen_.contains(id); }),
                 order_.end());
}

// One row for the ids; the oldest rows go once the newer ones hold the window and a slack more.
Result<void> DeliveredIds::store(const std::vector<protocol::MessageId>& ids) {
    if (ids.empty()) return {};
    // A lost id costs a duplicate only if the machine lost power and the gateway then delivered
    // again; a killed broker keeps every committed id (process_crash).
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto insert = database_->cached("INSERT INTO delivered (ids) VALUES (?1)");
    if (!insert) return insert.take_error();
    (*insert)->bind(1, ByteView(ids.front().data(), ids.size() * ids.front().size()));
    if (auto inserted = (*insert)->run(); !inserted) return inserted;
    const StoredRow added{database_->last_insert_rowid(), ids.size()};
    // Rows wholly older than the newest capacity_ ids, once past the slack.
    std::vector<StoredRow> pruned;
    if (stored_ids_ + added.ids > capacity_ + prune_slack(capacity_)) {
        std::size_t kept = stored_ids_ + added.ids;
        for (const auto& row : rows_) {
            if (kept - row.ids < capacity_) break;
            kept -= row.ids;
            pruned.push_back(row);
        }
    }
    if (!pruned.empty()) {
        auto prune = database_->cached("DELETE FROM delivered WHERE seq <= ?1");
        if (!prune) return prune.take_error();
        (*prune)->bind(1, pruned.back().seq);
        if (auto done = (*prune)->run(); !done) return done;
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    rows_.push_back(added);
    stored_ids_ += added.ids;
    for (const auto& row : pruned) {
        rows_.pop_front();
        stored_ids_ -= row.ids;
    }
    // Inside a transaction of the caller's, the rows are as they were if that one does not commit.
    database_->on_outcome([this, added, pruned = std::move(pruned)](bool committed) {
        if (committed) return;
        if (!rows_.empty() && rows_.back().seq == added.seq) {
            rows_.pop_back();
            stored_ids_ -= added.ids;
        }
        for (auto row = pruned.rbegin(); row != pruned.rend(); ++row) {
            rows_.push_front(*row);
            stored_ids_ += row->ids;
        }
    });
    return {};
}

Result<void> upgrade_delivered_ids_from_schema_2(Database& database) {
    auto read = database.prepare("SELECT id FROM delivered_schema_2 ORDER BY seq");
    if (!read) return read.take_error();
    auto insert = database.prepare("INSERT INTO delivered (ids) VALUES (?1)");
    if (!insert) return insert.take_error();
    constexpr std::size_t kIdsPerRow = 4096;
    Bytes ids;
    const auto write_row = [&]() -> Result<void> {
        if (ids.empty()) return {};
        insert->reset();
        insert->bind(1, ByteView(ids));
        ids.clear();
        return insert->run();
    };
    for (;;) {
        auto row = read->step();
        if (!row) return row.take_error();
        if (!*row) break;
        const auto id = read->column_blob_view(0);
        if (id.size() != protocol::MessageId{}.size()) return unreadable_id(database);
        ids.insert(ids.end(), id.begin(), id.end());
        if (ids.size() == kIdsPerRow * id.size()) {
            if (auto written = write_row(); !written) return written;
        }
    }
    if (auto written = write_row(); !written) return written;
    return database.exec("DROP TABLE delivered_schema_2");
}

}  // namespace aegis::store
