#include "store/state_database.h"

#include "store/dedup_store.h"
#include "store/outbound_store.h"

namespace aegis::store {

namespace {

constexpr const char* kLabel = "Aegis queue";

// The outbound queue (store/outbound_store.h): messages holds one row per publish, its
// messages back to back in body; messages_done marks the ones of a row already acknowledged
// (the row goes once all are); retries keeps the backoff of released and deferred messages;
// dead_letters one row per message. messages.seq and delivered.seq only order the rows that
// exist; inbox.seq is a cursor position and must never go back: AUTOINCREMENT. delivered
// holds the receiving broker's dedup window (store/dedup_store.h): one row per commit, its
// 16-byte message ids back to back.
constexpr const char* kQueueSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    priority INTEGER NOT NULL,
    count INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages_done (
    seq INTEGER PRIMARY KEY,
    done BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS retries (
    id BLOB PRIMARY KEY,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    priority INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    correlation BLOB NOT NULL,
    headers BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead_reason TEXT NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (dead_at_ms, seq);
)sql";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS delivered (
    seq INTEGER PRIMARY KEY,
    ids BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    patterns BLOB NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cursor TEXT NOT NULL,
    id BLOB NOT NULL,
    channel TEXT NOT NULL,
    envelope BLOB NOT NULL,
    UNIQUE (cursor, id)
);
CREATE INDEX IF NOT EXISTS inbox_by_cursor ON inbox (cursor, seq);
)sql";

// Schema 1 kept one row per message, its state in the row; schema 2 one row per publish.
// Schemas 1 and 2 kept one delivered row per id; schema 3 one row per commit.
constexpr const char* kSchema1Indexes =
    "DROP INDEX IF EXISTS messages_by_state; DROP INDEX IF EXISTS messages_waiting; "
    "DROP INDEX IF EXISTS messages_dead";

[[nodiscard]] Error foreign_file(const Database& database) {
    return make_error(ExitCode::bad_input, "{} is not an {} (it is another program's SQLite database)",
                      database.path().string(), database.label());
}

// Refuses anything but an empty file or an Aegis state file this build can read.
[[nodiscard]] Result<bool> check_identity(Database& database) {
    auto application_id = database.query_int("PRAGMA application_id");
    if (!application_id) return application_id.take_error();
    auto version = database.query_int("PRAGMA user_version");
    if (!version) return version.take_error();
    if (*application_id == 0) {
        auto objects = database.query_int("SELECT count(*) FROM sqlite_master");
        if (!objects) return objects.take_error();
        if (*objects != 0 || *version != 0) return foreign_file(database);
        return true;  // empty: ours to initialise
    }
    if (*application_id != kApplicationId) return foreign_file(database);
    if (*version > kSchemaVersion) {
        return make_error(ExitCode::bad_input,
                          "{} was written by a newer Aegis (schema {}; this version reads up to schema {})",
                          database.path().string(), *version, kSchemaVersion);
    }
    if (*version < 1) {
        return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): schema version {}",
                          database.path().string(), database.label(), *version);
    }
    return false;
}

[[nodiscard]] Result<void> initialise(Database& database) {
    auto transaction = database.begin();
    if (!transaction) return transaction.take_error();
    // Another process may have initialised it while this one waited for the write lock.
    auto fresh = check_identity(database);
    if (!fresh) return fresh.take_error();
    if (!*fresh) return {};
    if (auto created = database.exec(kSchema); !created) return created;
    if (auto created = database.exec(kQueueSchema); !created) return created;
    if (auto tagged = database.exec(
            fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId, kSchemaVersion));
        !tagged) {
        return tagged;
    }
    return transaction->commit();
}

// Rewrites a file of an earlier schema as this one, in one transaction: all of it or none.
[[nodiscard]] Result<void> upgrade(Database& database) {
    auto transaction = database.begin();
    if (!transaction) return transaction.take_error();
    auto version = database.query_int("PRAGMA user_version");
    if (!version) return version.take_error();
    if (*version >= kSchemaVersion) return {};  // another process upgraded it meanwhile
    if (*version == 1) {
        if (auto renamed =
                database.exec(fmt::format("{}; ALTER TABLE messages RENAME TO messages_schema_1", kSchema1Indexes));
            !renamed) {
            return renamed;
        }
        if (auto created = database.exec(kQueueSchema); !created) return created;
        if (auto moved = upgrade_outbound_queue_from_schema_1(database); !moved) return moved;
    }
    if (*version <= 2) {
        if (auto renamed = database.exec("ALTER TABLE delivered RENAME TO delivered_schema_2; "
                                         "CREATE TABLE delivered (seq INTEGER PRIMARY KEY, ids BLOB NOT NULL)");
            !renamed) {
            return renamed;
        }
        if (auto moved = upgrade_delivered_ids_from_schema_2(database); !moved) return moved;
    }
    if (auto tagged = database.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion)); !tagged) return tagged;
    return transaction->commit();
}

}  // namespace

Result<std::shared_ptr<Database>> open_state_database(const std::filesystem::path& file) {
    auto opened = Database::open(file, OpenMode::read_write_create, kLabel);
    if (!opened) return opened.take_error();
    std::shared_ptr<Database> database = std::move(*opened);

    auto fresh = check_identity(*database);
    if (!fresh) return fresh.take_error();
    if (!*fresh) {
        if (auto sound = database->check_integrity(); !sound) return sound.take_error();
    }
    // WAL: readers never block the writer. synchronous=FULL: in WAL mode NORMAL may lose the
    // last commits on power loss, and a push that returned must survive that; group commit
    // pays for the extra fsync.
    if (auto logged = database->use_write_ahead_log(); !logged) return logged.take_error();
    if (*fresh) {
        if (auto initialised = initialise(*database); !initialised) return initialised.take_error();
    }
    auto version = database->query_int("PRAGMA user_version");
    if (!version) return version.take_error();
    if (*version < kSchemaVersion) {
        if (auto upgraded = upgrade(*database); !upgraded) return upgraded.take_error();
    }
    return database;
}

}  // namespace aegis::store
