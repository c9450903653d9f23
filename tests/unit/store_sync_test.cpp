// What reaches the disk: a VFS shim in front of SQLite's own notes every write to a
// write-ahead log and every sync of one, so a test can ask whether a commit that promised to
// survive power loss left anything in the log that was never synced.

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "store/sqlite.h"

namespace store = aegis::store;

namespace {

// Set by a write to any write-ahead log, cleared by a sync of one (an fsync through any
// descriptor of a file flushes what every descriptor wrote).
std::atomic<bool> log_unsynced{false};
std::atomic<int> log_syncs{0};
sqlite3_vfs* real_vfs = nullptr;

struct WatchedFile {
    sqlite3_file base;
    sqlite3_file* real;  // SQLite's own file object, allocated right after this one
    bool log;
};

sqlite3_file* real_of(sqlite3_file* file) {
    return reinterpret_cast<WatchedFile*>(file)->real;
}

int watched_close(sqlite3_file* file) {
    return real_of(file)->pMethods->xClose(real_of(file));
}
int watched_read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
    return real_of(file)->pMethods->xRead(real_of(file), buffer, amount, offset);
}
int watched_write(sqlite3_file* file, const void* buffer, int amount, sqlite3_int64 offset) {
    const int code = real_of(file)->pMethods->xWrite(real_of(file), buffer, amount, offset);
    if (reinterpret_cast<WatchedFile*>(file)->log) log_unsynced = true;
    return code;
}
int watched_truncate(sqlite3_file* file, sqlite3_int64 size) {
    return real_of(file)->pMethods->xTruncate(real_of(file), size);
}
int watched_sync(sqlite3_file* file, int flags) {
    const int code = real_of(file)->pMethods->xSync(real_of(file), flags);
    if (code == SQLITE_OK && reinterpret_cast<WatchedFile*>(file)->log) {
        log_unsynced = false;
        ++log_syncs;
    }
    return code;
}
int watched_file_size(sqlite3_file* file, sqlite3_int64* size) {
    return real_of(file)->pMethods->xFileSize(real_of(file), size);
}
int watched_lock(sqlite3_file* file, int lock) {
    return real_of(file)->pMethods->xLock(real_of(file), lock);
}
int watched_unlock(sqlite3_file* file, int lock) {
    return real_of(file)->pMethods->xUnlock(real_of(file), lock);
}
int watched_check_reserved(sqlite3_file* file, int* out) {
    return real_of(file)->pMethods->xCheckReservedLock(real_of(file), out);
}
int watched_file_control(sqlite3_file* file, int op, void* arg) {
    // The log's file object as SQLite holds it is this one, so a sync through it is seen.
    return real_of(file)->pMethods->xFileControl(real_of(file), op, arg);
}
int watched_sector_size(sqlite3_file* file) {
    return real_of(file)->pMethods->xSectorSize(real_of(file));
}
int watched_device(sqlite3_file* file) {
    return real_of(file)->pMethods->xDeviceCharacteristics(real_of(file));
}
int watched_shm_map(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
    return real_of(file)->pMethods->xShmMap(real_of(file), page, size, extend, out);
}
int watched_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    return real_of(file)->pMethods->xShmLock(real_of(file), offset, n, flags);
}
void watched_shm_barrier(sqlite3_file* file) {
    real_of(file)->pMethods->xShmBarrier(real_of(file));
}
int watched_shm_unmap(sqlite3_file* file, int remove) {
    return real_of(file)->pMethods->xShmUnmap(real_of(file), remove);
}
int watched_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
    return real_of(file)->pMethods->xFetch(real_of(file), offset, amount, out);
}
int watched_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    return real_of(file)->pMethods->xUnfetch(real_of(file), offset, page);
}

const sqlite3_io_methods watched_methods = {
    3,
    watched_close,
    watched_read,
    watched_write,
    watched_truncate,
    watched_sync,
    watched_file_size,
    watched_lock,
    watched_unlock,
    watched_check_reserved,
    watched_file_control,
    watched_sector_size,
    watched_device,
    watched_shm_map,
    watched_shm_lock,
    watched_shm_barrier,
    watched_shm_unmap,
    watched_fetch,
    watched_unfetch,
};

int watched_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    auto* watched = reinterpret_cast<WatchedFile*>(file);
    watched->real = reinterpret_cast<sqlite3_file*>(watched + 1);
    watched->log = (flags & SQLITE_OPEN_WAL) != 0;
    const int code = real_vfs->xOpen(real_vfs, name, watched->real, flags, out_flags);
    watched->base.pMethods = watched->real->pMethods != nullptr ? &watched_methods : nullptr;
    return code;
}
int watched_delete(sqlite3_vfs*, const char* name, int sync_dir) {
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}
int watched_access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return real_vfs->xAccess(real_vfs, name, flags, out);
}
int watched_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
    return real_vfs->xFullPathname(real_vfs, name, size, out);
}

// The shim as the default VFS for the life of the object (so Database::open uses it).
class WatchedVfs {
public:
    WatchedVfs() {
        real_vfs = sqlite3_vfs_find(nullptr);
        vfs_ = *real_vfs;
        vfs_.szOsFile = static_cast<int>(sizeof(WatchedFile)) + real_vfs->szOsFile;
        vfs_.zName = "aegis-watched";
        vfs_.pNext = nullptr;
        vfs_.xOpen = watched_open;
        vfs_.xDelete = watched_delete;
        vfs_.xAccess = watched_access;
        vfs_.xFullPathname = watched_full_pathname;
        registered_ = sqlite3_vfs_register(&vfs_, 1) == SQLITE_OK;
    }
    ~WatchedVfs() {
        sqlite3_vfs_unregister(&vfs_);
        sqlite3_vfs_register(real_vfs, 1);
    }
    WatchedVfs(const WatchedVfs&) = delete;
    WatchedVfs& operator=(const WatchedVfs&) = delete;
    [[nodiscard]] bool registered() const { return registered_; }

private:
    sqlite3_vfs vfs_{};
    bool registered_ = false;
};

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-sync-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

void insert(store::Database& database, int value) {
    auto statement = database.prepare("INSERT INTO t (x) VALUES (?1)");
    REQUIRE(statement);
    statement->bind(1, value);
    REQUIRE(statement->run());
}

// One row inserted in a transaction of its own, committed.
void insert_committed(store::Database& database, store::Durability durability, int value) {
    auto transaction = database.begin(durability);
    REQUIRE(transaction);
    insert(database, value);
    REQUIRE(transaction->commit());
}

}  // namespace

TEST_CASE("store: a power_loss part joined to a relaxed transaction is synced while a reader blocks the checkpoint",
          "[store]") {
    const WatchedVfs vfs;
    REQUIRE(vfs.registered());
    const TempDir dir;
    const auto file = dir.path / "joined.db";
    auto opened = store::Database::open(file, store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& database = **opened;
    REQUIRE(database.use_write_ahead_log());
    REQUIRE(database.exec("CREATE TABLE t (x INTEGER)"));
    // Everything copied back and the log emptied: the reader below then reads the file alone,
    // and the log frames written after it began are ones no checkpoint may copy back yet.
    REQUIRE(database.exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    auto reader = store::Database::open(file, store::OpenMode::read_only);
    REQUIRE(reader);
    REQUIRE((*reader)->exec("BEGIN"));
    REQUIRE((*reader)->query_int("SELECT count(*) FROM t"));

    SECTION("a relaxed transaction alone leaves its frames unsynced (what the check below can see)") {
        insert_committed(database, store::Durability::process_crash, 1);
        CHECK(log_unsynced.load());
    }
    SECTION("a power_loss transaction syncs its frames at COMMIT") {
        insert_committed(database, store::Durability::power_loss, 1);
        CHECK_FALSE(log_unsynced.load());
    }
    SECTION("a power_loss part joined to a relaxed one syncs every frame before the commit returns") {
        const int syncs_before = log_syncs;
        auto outer = database.begin(store::Durability::process_crash);
        REQUIRE(outer);
        insert(database, 1);
        {
            auto inner = database.begin(store::Durability::power_loss);
            REQUIRE(inner);
            insert(database, 2);
            REQUIRE(inner->commit());
        }
        REQUIRE(outer->commit());
        CHECK_FALSE(log_unsynced.load());
        CHECK(log_syncs.load() > syncs_before);
        auto rows = database.query_int("SELECT count(*) FROM t");
        REQUIRE(rows);
        CHECK(*rows == 2);
    }
    REQUIRE((*reader)->exec("COMMIT"));
}

TEST_CASE("store: a deferred power_loss commit leaves its frames unsynced until sync_log()", "[store]") {
    const WatchedVfs vfs;
    REQUIRE(vfs.registered());
    const TempDir dir;
    auto opened = store::Database::open(dir.path / "deferred.db", store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& database = **opened;
    REQUIRE(database.use_write_ahead_log());
    REQUIRE(database.exec("CREATE TABLE t (x INTEGER)"));

    SECTION("a power_loss commit owes a sync; sync_log() pays it") {
        database.defer_log_sync();
        insert_committed(database, store::Durability::power_loss, 1);
        CHECK(log_unsynced.load());  // committed, visible, not yet on the device
        auto rows = database.query_int("SELECT count(*) FROM t");
        REQUIRE(rows);
        CHECK(*rows == 1);
        CHECK(database.stop_deferring_log_sync());
        CHECK_FALSE(database.stop_deferring_log_sync());  // owed once
        REQUIRE(database.sync_log());
        CHECK_FALSE(log_unsynced.load());
    }
    SECTION("a process_crash commit owes nothing") {
        database.defer_log_sync();
        insert_committed(database, store::Durability::process_crash, 1);
        CHECK_FALSE(database.stop_deferring_log_sync());
    }
    SECTION("after the deferral a power_loss commit syncs at COMMIT again") {
        database.defer_log_sync();
        CHECK_FALSE(database.stop_deferring_log_sync());
        insert_committed(database, store::Durability::power_loss, 1);
        CHECK_FALSE(log_unsynced.load());
    }
}
