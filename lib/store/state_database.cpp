#include "store/state_database.h"

namespace aegis::store {

namespace {

constexpr const char* kLabel = "Aegis queue";

// messages.seq and delivered.seq only order the rows that exist (the outbound queue moves its
// read cursor back when a row id is reused); inbox.seq is a cursor position and must never go
// back: AUTOINCREMENT. messages.state 'in_flight' is no longer written (in flight is kept in
// memory, store/outbound_store.h); files of earlier versions may hold it, and open() clears it.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages (
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
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'in_flight', 'dead')),
    dead_reason TEXT,
    dead_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS delivered (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE
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

// The queue's indexes hold only the rows the broker looks for: the waiting ones in the order
// they are sent, and the dead letters in the order they are pruned. A message taken for sending
// leaves the first and an acknowledged one is deleted without touching either. (Schema 1 had one
// index of every row by state: three index updates per message sent instead of one.) Run at
// every open, so a file made by an earlier build gets them too.
constexpr const char* kIndexes = R"sql(
DROP INDEX IF EXISTS messages_by_state;
CREATE INDEX IF NOT EXISTS messages_waiting ON messages (priority, seq) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS messages_dead ON messages (dead_at_ms, seq) WHERE state = 'dead';
)sql";

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
    if (auto tagged = database.exec(
            fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId, kSchemaVersion));
        !tagged) {
        return tagged;
    }
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
    if (auto indexed = database->exec(kIndexes); !indexed) return indexed.take_error();
    return database;
}

}  // namespace aegis::store
