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
    auto count = database_->query_int("SELECT count(*) FROM delivered");
    if (!count) return count.take_error();
    stored_rows_ = static_cast<std::size_t>(*count);
    // The newest `capacity` ids, oldest first.
    auto statement =
        database_->prepare("SELECT id FROM (SELECT seq, id FROM delivered ORDER BY seq DESC LIMIT ?1) ORDER BY seq");
    if (!statement) return statement.take_error();
    statement->bind(1, static_cast<std::int64_t>(capacity_));
    for (;;) {
        auto row = statement->step();
        if (!row) return row.take_error();
        if (!*row) return {};
        const auto blob = statement->column_blob_view(0);
        protocol::MessageId id{};
        if (blob.size() != id.size()) {
            return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): a delivered id cannot be read",
                              database_->path().string(), database_->label());
        }
        std::copy(blob.begin(), blob.end(), id.begin());
        admit(id);
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
    order_.erase(std::remove_if(order_.begin(), order_.end(), [&](const auto& id) { return seen_.count(id) == 0; }),
                 order_.end());
}

Result<void> DeliveredIds::remember(const std::vector<protocol::MessageId>& ids) {
    if (auto stored = store(ids); !stored) return stored;
    for (const auto& id : ids) admit(id);
    return {};
}

Result<void> DeliveredIds::store(const std::vector<protocol::MessageId>& ids) {
    if (ids.empty()) return {};
    // A lost id costs a duplicate only if the machine lost power and the gateway then delivered
    // again; a killed broker keeps every committed id (process_crash).
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    std::size_t added = 0;
    {
        auto lease = database_->cached("INSERT INTO delivered (id) VALUES (?1) ON CONFLICT (id) DO NOTHING");
        if (!lease) return lease.take_error();
        for (const auto& id : ids) {
            (*lease)->reset();
            (*lease)->bind(1, ByteView(id));
            if (auto inserted = (*lease)->run(); !inserted) return inserted;
            added += static_cast<std::size_t>(database_->changes());
        }
    }
    std::size_t rows = stored_rows_ + added;
    if (rows > capacity_ + prune_slack(capacity_)) {
        auto prune = database_->prepare(
            "DELETE FROM delivered WHERE seq <= (SELECT seq FROM delivered ORDER BY seq DESC LIMIT 1 OFFSET ?1)");
        if (!prune) return prune.take_error();
        prune->bind(1, static_cast<std::int64_t>(capacity_));
        if (auto pruned = prune->run(); !pruned) return pruned;
        rows -= static_cast<std::size_t>(database_->changes());
    }
    if (auto committed = transaction->commit(); !committed) return committed;
    database_->on_outcome([this, before = std::exchange(stored_rows_, rows)](bool committed) {
        if (!committed) stored_rows_ = before;
    });
    return {};
}

}  // namespace aegis::store
