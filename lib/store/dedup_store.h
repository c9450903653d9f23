#pragma once
// The persisted dedup window of the receiving broker: the ids of the newest delivered
// messages, kept in the state database, so a message the gateway delivers again after the
// broker was killed and restarted still reaches each subscriber once. Bounded: the newest
// `capacity` ids are kept; older ones are pruned from the file in batches.
//
// On file, one row per flush holds its ids back to back (delivered.ids, 16 bytes each): a
// delivery of 256 messages writes one row, not 256 rows and index entries. The lookup is in
// memory only, so the file needs no index on the ids; a row goes once all of its ids have left
// the window.

#include <boost/unordered/unordered_flat_set.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/result.h"
#include "protocol/envelope.h"
#include "protocol/message_id_hash.h"

namespace aegis::store {

class Database;

class DeliveredIds {
public:
    [[nodiscard]] static Result<std::unique_ptr<DeliveredIds>> open(const std::filesystem::path& file,
                                                                    std::size_t capacity = 100'000);
    [[nodiscard]] static Result<std::unique_ptr<DeliveredIds>> open(std::shared_ptr<Database> database,
                                                                    std::size_t capacity = 100'000);
    ~DeliveredIds();

    // True the first time an id is offered. Counted at once in memory; on disk with flush().
    [[nodiscard]] bool first_sight(const protocol::MessageId& id);
    [[nodiscard]] bool seen(const protocol::MessageId& id) const { return seen_.count(id) != 0; }
    // Stores every id first_sight admitted since the last flush, in one transaction; inside a
    // transaction of the caller's (Database::begin joins it), the ids are un-admitted again if
    // that one does not commit, as forget_pending() would.
    [[nodiscard]] Result<void> flush();
    // Un-admits the ids not flushed yet: their delivery could not be stored and is not
    // acknowledged, so the gateway's redelivery must be taken, not dropped as a copy.
    void forget_pending();

    [[nodiscard]] std::size_t size() const { return order_.size(); }
    [[nodiscard]] std::size_t pending() const { return pending_.size(); }

private:
    // A row of the file: its seq and how many ids it holds.
    struct StoredRow {
        std::int64_t seq = 0;
        std::size_t ids = 0;
    };

    DeliveredIds(std::shared_ptr<Database> database, std::size_t capacity);
    [[nodiscard]] Result<void> load();
    [[nodiscard]] Result<void> store(const std::vector<protocol::MessageId>& ids);
    void admit(const protocol::MessageId& id);
    void push(const protocol::MessageId& id);  // an id just added to seen_ joins the window
    void forget(const std::vector<protocol::MessageId>& ids);

    std::shared_ptr<Database> database_;
    std::size_t capacity_;
    std::deque<protocol::MessageId> order_;  // oldest first
    boost::unordered_flat_set<protocol::MessageId, protocol::MessageIdHash> seen_;
    std::vector<protocol::MessageId> pending_;
    std::deque<StoredRow> rows_;  // the file's rows, oldest first
    std::size_t stored_ids_ = 0;  // the ids they hold, pruned back to capacity_ past a slack
};

// Moves the delivered ids of a schema 1 or 2 state file (one row per id), renamed
// delivered_schema_2, into schema 3's rows, inside the caller's transaction
// (open_state_database's upgrade), and drops it.
[[nodiscard]] Result<void> upgrade_delivered_ids_from_schema_2(Database& database);

}  // namespace aegis::store
