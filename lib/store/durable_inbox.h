#pragma once
// Durable inboxes for named subscribers (aegis-sub --durable NAME): the broker appends each
// delivered message to the inbox of every cursor whose patterns match it, whether or not the
// subscriber is running; the subscriber reads after its position and advances it, which
// deletes what it consumed. Appending is idempotent per (cursor, message id) while the
// message is unconsumed, so a redelivery after a crash is not stored twice.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "protocol/envelope.h"

namespace aegis::store {

class Database;

struct InboxLimits {
    // Past this an inbox drops its oldest messages and counts them in CursorInfo::dropped.
    std::size_t max_per_cursor = 100'000;
};

struct CursorInfo {
    std::string name;
    std::vector<std::string> patterns;
    std::uint64_t position = 0;  // the last consumed inbox sequence
    std::uint64_t dropped = 0;   // messages lost because the inbox was full
    std::size_t pending = 0;     // messages waiting to be read
    std::uint64_t created_ms = 0;
};

// A message to append: the envelope bytes are stored as given (the broker's encoding).
struct InboxEntry {
    protocol::MessageId id{};
    std::string channel;
    Bytes envelope;
};

struct InboxItem {
    std::uint64_t sequence = 0;  // increasing across the whole file
    protocol::MessageId id{};
    std::string channel;
    Bytes envelope;
};

class DurableInbox {
public:
    [[nodiscard]] static Result<std::unique_ptr<DurableInbox>> open(const std::filesystem::path& file,
                                                                    InboxLimits limits = {});
    [[nodiscard]] static Result<std::unique_ptr<DurableInbox>> open(std::shared_ptr<Database> database,
                                                                    InboxLimits limits = {});
    ~DurableInbox();

    // Creates a cursor, or replaces the patterns of an existing one (its position and inbox stay).
    [[nodiscard]] Result<void> create_cursor(const std::string& name, const std::vector<std::string>& patterns,
                                             std::uint64_t now_ms);
    // Deletes a cursor and its inbox; false when there was none.
    [[nodiscard]] Result<bool> remove_cursor(const std::string& name);
    [[nodiscard]] Result<std::vector<CursorInfo>> cursors() const;
    [[nodiscard]] Result<std::optional<CursorInfo>> cursor(const std::string& name) const;
    // Messages waiting in the cursor's inbox (0 for an unknown cursor), without a query.
    [[nodiscard]] std::size_t pending(const std::string& name) const;

    // Appends every entry to every named cursor in one transaction; unknown cursors are skipped.
    // Returns how many rows were added (duplicates of unconsumed messages are not). Inside a
    // transaction of the caller's, pending() counts them at once and goes back if it rolls back.
    [[nodiscard]] Result<std::size_t> append(const std::vector<std::string>& cursor_names,
                                             const std::vector<InboxEntry>& entries);
    // Up to `limit` messages of the cursor's inbox with a sequence above `after`, in order.
    [[nodiscard]] Result<std::vector<InboxItem>> read_after(const std::string& name, std::uint64_t after,
                                                            std::size_t limit) const;
    // The subscriber consumed everything up to `sequence`: removed; the position never goes back.
    [[nodiscard]] Result<void> advance(const std::string& name, std::uint64_t sequence);

private:
    DurableInbox(std::shared_ptr<Database> database, InboxLimits limits);
    [[nodiscard]] Result<void> load_pending();
    [[nodiscard]] Result<std::size_t> trim(const std::string& name);

    std::shared_ptr<Database> database_;
    InboxLimits limits_;
    std::map<std::string, std::size_t, std::less<>> pending_;  // per existing cursor
};

}  // namespace aegis::store
