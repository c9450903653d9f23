#pragma once
// The broker's state file (queue.db): the outbound queue, the delivered-id window and the
// durable inboxes share one SQLite database, so one fsync commits related changes together.
// The file is recognised by its application id and schema version; anything else is refused,
// never silently reset.

#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/result.h"
#include "store/sqlite.h"

namespace aegis::store {

// "AEGQ": PRAGMA application_id of every Aegis state file.
inline constexpr std::int32_t kApplicationId = 0x41454751;
// PRAGMA user_version: the schema this build writes. Older files are upgraded, newer ones refused.
// 2: the outbound queue holds one row per publish (schema 1: one row per message).
// 3: the delivered-id window holds one row per commit (schemas 1 and 2: one row per id).
inline constexpr std::int64_t kSchemaVersion = 3;

// Opens (creating if missing) an Aegis state file: checks it is one, turns on WAL with full
// sync, and creates the tables. A foreign SQLite file, a file from a newer Aegis, a file
// that is not SQLite at all, or a damaged one (Database::check_integrity) fails with
// ExitCode::bad_input.
[[nodiscard]] Result<std::shared_ptr<Database>> open_state_database(const std::filesystem::path& file);

}  // namespace aegis::store
