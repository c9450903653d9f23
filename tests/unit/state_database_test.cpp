// The state database: the SQLite wrapper, and opening the one state file the queue, the
// delivered-id window and the durable inboxes share (what is and is not an Aegis state file).

#include "store/state_database.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "child_process.h"
#include "store/dedup_store.h"
#include "store/durable_inbox.h"
#include "store/outbound_store.h"
#include "store/sqlite.h"
#include "store_test_support.h"

namespace store = aegis::store;
using namespace aegis::test::store_support;
using aegis::Bytes;
using aegis::ExitCode;
using aegis::test::run_in_child;
using aegis::test::write_text;

// ---------------------------------------------------------------------------------------------
// The SQLite wrapper

TEST_CASE("store: the SQLite wrapper binds, steps, reads columns and rolls back unfinished transactions", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("plain.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE t (n INTEGER, s TEXT, b BLOB)"));
    {
        auto insert = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)");
        REQUIRE(insert);
        const Bytes blob{0, 1, 2, 0, 255};
        insert->bind(1, std::int64_t{-5}).bind(2, std::string_view("text")).bind(3, aegis::ByteView(blob));
        REQUIRE(insert->run());
        insert->reset();
        insert->bind(1, std::uint64_t{7}).bind(2, std::string_view("")).bind(3, aegis::ByteView());
        REQUIRE(insert->run());
    }
    {
        auto transaction = db.begin();
        REQUIRE(transaction);
        REQUIRE(db.exec("INSERT INTO t VALUES (99, 'lost', NULL)"));
    }  // not committed: rolled back
    auto count = db.query_int("SELECT count(*) FROM t");
    REQUIRE(count);
    CHECK(*count == 2);

    auto select = db.prepare("SELECT n, s, b FROM t ORDER BY rowid");
    REQUIRE(select);
    auto row = select->step();
    REQUIRE(row);
    REQUIRE(*row);
    CHECK(select->column_int(0) == -5);
    CHECK(select->column_text(1) == "text");
    CHECK(select->column_blob(2) == Bytes{0, 1, 2, 0, 255});
    row = select->step();
    REQUIRE((row && *row));
    CHECK(select->column_uint(0) == 7);
    CHECK(select->column_blob(2).empty());
    CHECK_FALSE(select->column_is_null(2));  // an empty blob is stored as an empty blob, not NULL
    row = select->step();
    REQUIRE(row);
    CHECK_FALSE(*row);

    auto bad = db.prepare("SELECT nonsense FROM nowhere");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("no such table") != std::string::npos);
}

TEST_CASE("store: SQLite keeps no memory statistics (a global mutex at every allocation)", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("plain.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    REQUIRE((*opened)->exec("CREATE TABLE t (b BLOB)"));
    REQUIRE((*opened)->exec("INSERT INTO t VALUES (randomblob(100000))"));
    // The connection holds a page cache and a schema, yet nothing was counted.
    CHECK(sqlite3_memory_used() == 0);
}

TEST_CASE("store: a transaction begun inside another joins it, and an unfinished part fails the whole", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("nested.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("PRAGMA journal_mode = WAL"));
    REQUIRE(db.exec("CREATE TABLE t (n INTEGER)"));
    const auto rows = [&] {
        auto count = db.query_int("SELECT count(*) FROM t");
        REQUIRE(count);
        return *count;
    };
    {
        auto outer = db.begin(store::Durability::process_crash);
        REQUIRE(outer);
        {
            auto inner = db.begin(store::Durability::power_loss);  // joins; a checkpoint follows the commit
            REQUIRE(inner);
            REQUIRE(db.exec("INSERT INTO t VALUES (1)"));
            REQUIRE(inner->commit());
        }
        REQUIRE(db.exec("INSERT INTO t VALUES (2)"));
        REQUIRE(outer->commit());
    }
    CHECK(rows() == 2);
    {
        auto outer = db.begin();
        REQUIRE(outer);
        REQUIRE(db.exec("INSERT INTO t VALUES (3)"));
        {
            auto inner = db.begin(store::Durability::process_crash);
            REQUIRE(inner);
            REQUIRE(db.exec("INSERT INTO t VALUES (4)"));
        }  // not committed: the outer commit must roll everything back
        auto committed = outer->commit();
        REQUIRE_FALSE(committed);
        CHECK(committed.error().message.find("nothing was written") != std::string::npos);
    }
    CHECK(rows() == 2);
    auto after = db.begin();  // the connection is usable again
    REQUIRE(after);
    REQUIRE(db.exec("INSERT INTO t VALUES (5)"));
    REQUIRE(after->commit());
    CHECK(rows() == 3);
}

TEST_CASE("store: a state file's log is checkpointed by a thread of its own, and then reused", "[store]") {
    TempDir dir;
    const auto file = dir.file("state.db");
    auto opened = store::open_state_database(file);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE filler (b BLOB)"));
    const Bytes row(4000, 0x5a);  // a page of its own: every commit adds frames to the log
    auto fill = [&](int commits) {
        for (int i = 0; i < commits; ++i) {
            auto transaction = db.begin(store::Durability::process_crash);
            REQUIRE(transaction);
            auto insert = db.cached("INSERT INTO filler VALUES (?1)");
            REQUIRE(insert);
            (*insert)->bind(1, aegis::ByteView(row));
            REQUIRE((*insert)->run());
            REQUIRE(transaction->commit());
        }
    };
    // Waits for the condition itself, with a generous bound: a passive checkpoint under load may
    // copy part of the log, and the one after the last commit may start late on a busy machine.
    // A log copied whole is restarted by the next commit; when that happens in the middle of a
    // fill, the rest of the fill may stay under the request threshold (kBackgroundCheckpointFrames),
    // and then nothing asks the thread again (seen under a sanitizer build: 120 s of waiting). In
    // use the next kBackgroundCheckpointFrames frames would. So every 2 s without the condition this connection runs
    // one passive checkpoint itself; background_checkpoints() still counts only the thread's.
    auto eventually = [&](const std::function<bool()>& condition) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        auto next_poke = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!condition()) {
            const auto now = std::chrono::steady_clock::now();
            if (now > deadline) return false;
            if (now > next_poke) {
                REQUIRE(db.exec("PRAGMA wal_checkpoint(PASSIVE)"));
                next_poke = now + std::chrono::seconds(2);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    };
    // The log is copied whole when the wal-index (the -shm file, SQLite's walformat: header at 0,
    // mxFrame at byte 16; checkpoint info at 96, nBackfill first; native byte order) says that
    // every frame in it has been backfilled. Reading it checkpoints nothing.
    auto copied = [&] {
        std::ifstream shm(file.string() + "-shm", std::ios::binary);
        std::uint32_t max_frame = 0, backfilled = 0;
        shm.seekg(16);
        shm.read(reinterpret_cast<char*>(&max_frame), sizeof max_frame);
        shm.seekg(96);
        shm.read(reinterpret_cast<char*>(&backfilled), sizeof backfilled);
        return shm.good() && max_frame > 0 && backfilled == max_frame;
    };
    const auto wal = std::filesystem::path(file.string() + "-wal");
    const int commits = store::Database::kBackgroundCheckpointFrames;  // at least as many frames
    fill(commits);
    REQUIRE(eventually([&] { return db.background_checkpoints() > 0 && copied(); }));
    const int first = db.background_checkpoints();
    const auto database_bytes = std::filesystem::file_size(file);
    const auto log_bytes = std::filesystem::file_size(wal);
    CHECK(database_bytes > static_cast<std::uintmax_t>(commits) * row.size());  // copied into the file
    // The log was copied whole, so the next commits write it again from its start. A writer can
    // restart the log only when no other connection holds a read mark at that moment, and the
    // checkpoint thread may hold one just then on a busy machine (the log then grows by one more
    // round of frames). Over four more rounds, each begun after the log was copied, a log that is
    // reused stays under three rounds' size; a log nobody reuses would hold five.
    const int rounds = 4;
    for (int round = 0; round < rounds; ++round) {
        const int before = db.background_checkpoints();
        fill(commits);
        REQUIRE(eventually([&] { return db.background_checkpoints() > before && copied(); }));
    }
    CHECK(db.background_checkpoints() > first);
    CHECK(std::filesystem::file_size(wal) < 3 * log_bytes);
    auto count = db.query_int("SELECT count(*) FROM filler");
    REQUIRE(count);
    CHECK(*count == (rounds + 1) * commits);
}

TEST_CASE("store: a log grown past its limit is cut back once copied, so a drained queue gives its disk back",
          "[store]") {
    TempDir dir;
    const auto file = dir.file("state.db");
    auto opened = store::open_state_database(file);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE filler (b BLOB)"));
    const auto wal = std::filesystem::path(file.string() + "-wal");
    const auto limit = static_cast<std::uintmax_t>(store::Database::kLogSizeLimitBytes);

    // A reader's snapshot holds every checkpoint back (a long outage does the same with many
    // commits): the log grows to twice its limit.
    sqlite3* reader = nullptr;
    REQUIRE(sqlite3_open_v2(file.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM filler", nullptr, nullptr, nullptr) == SQLITE_OK);
    const Bytes row(4000, 0x5a);
    while (std::filesystem::file_size(wal) <= 2 * limit) {
        auto transaction = db.begin(store::Durability::process_crash);
        REQUIRE(transaction);
        for (int i = 0; i < 100; ++i) {
            auto insert = db.cached("INSERT INTO filler VALUES (?1)");
            REQUIRE(insert);
            (*insert)->bind(1, aegis::ByteView(row));
            REQUIRE((*insert)->run());
        }
        REQUIRE(transaction->commit());
    }
    REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(reader);

    // Drained; once the log is copied whole, the next commit writes it from its start and cuts
    // it back. A commit can restart the log only while no connection holds a read mark on it
    // (the checkpoint thread may, for a moment): so it is tried again for a while.
    REQUIRE(db.exec("DELETE FROM filler"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::filesystem::file_size(wal) > limit && std::chrono::steady_clock::now() < deadline) {
        REQUIRE(db.exec("PRAGMA wal_checkpoint(PASSIVE)"));
        REQUIRE(db.exec("INSERT INTO filler VALUES (zeroblob(10))"));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(std::filesystem::file_size(wal) <= limit);
}

TEST_CASE("store: the SQLite wrapper reports a full database as 'disk full'", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("small.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 8"));
    auto insert = db.prepare("INSERT INTO t VALUES (zeroblob(100000))");
    REQUIRE(insert);
    auto result = insert->run();
    REQUIRE_FALSE(result);
    CHECK(result.error().exit == ExitCode::failure);
    CHECK(result.error().message.find("disk full") != std::string::npos);
    CHECK(result.error().message.find("small.db") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Opening: what is and is not an Aegis queue

TEST_CASE("store: a new queue file is tagged, in WAL mode, and reopens", "[store]") {
    TempDir dir;
    { auto queue = open_queue(dir.file()); }
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto application_id = (*db)->query_int("PRAGMA application_id");
    auto version = (*db)->query_int("PRAGMA user_version");
    auto synchronous = (*db)->query_int("PRAGMA synchronous");
    REQUIRE((application_id && version && synchronous));
    CHECK(*application_id == store::kApplicationId);
    CHECK(*version == store::kSchemaVersion);
    CHECK(*synchronous == 2);  // FULL
    auto mode = (*db)->prepare("PRAGMA journal_mode");
    REQUIRE(mode);
    REQUIRE(mode->step());
    CHECK(mode->column_text(0) == "wal");
}

TEST_CASE("store: a state file is made 0600 with its log, and one open to others is refused", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    const auto mode_of = [](const std::string& name) {
        struct stat info {};
        REQUIRE(::stat(name.c_str(), &info) == 0);
        return info.st_mode & 07777;
    };
    const auto old_mask = ::umask(022);  // the common one: SQLite alone would make 0644 files
    {
        auto db = store::open_state_database(file);
        ::umask(old_mask);
        REQUIRE(db);
        for (const char* suffix : {"", "-wal", "-shm"}) {
            INFO(suffix);
            CHECK(mode_of(file.string() + suffix) == 0600);
        }
    }
    SECTION("the file") {
        ::chmod(file.c_str(), 0640);
        auto refused = store::open_state_database(file);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::bad_input);
        CHECK(refused.error().message ==
              fmt::format("state file {0} is open to the group or others (mode 0640); chmod 600 {0}", file.string()));
    }
    SECTION("a log left behind") {
        const auto log = file.string() + "-wal";
        std::ofstream{log};
        ::chmod(log.c_str(), 0604);
        auto refused = store::open_state_database(file);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::bad_input);
        CHECK(refused.error().message.find("chmod 600 " + log) != std::string::npos);
    }
}

TEST_CASE("store: another program's SQLite file is refused and left untouched", "[store]") {
    TempDir dir;
    const auto file = dir.file("other.db");
    {
        auto db = store::Database::open(file, store::OpenMode::read_write_create);
        REQUIRE(db);
        REQUIRE((*db)->exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('ada')"));
    }
    const auto before = file_bytes(file);
    auto queue = store::SqliteOutboundQueue::open(file, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message.find("other.db is not an Aegis queue") != std::string::npos);
    CHECK(file_bytes(file) == before);  // not converted to WAL, not reset

    SECTION("an SQLite file with another application id is refused too") {
        auto db = store::Database::open(file, store::OpenMode::read_write);
        REQUIRE(db);
        REQUIRE((*db)->exec("PRAGMA application_id = 1234; PRAGMA user_version = 1"));
        auto again = store::DeliveredIds::open(file);
        REQUIRE_FALSE(again);
        CHECK(again.error().exit == ExitCode::bad_input);
        CHECK(again.error().message.find("not an Aegis queue") != std::string::npos);
    }
}

TEST_CASE("store: a file that is not SQLite at all is refused as bad input", "[store]") {
    TempDir dir;
    const auto file = dir.file("garbage.db");
    {
        std::ofstream out(file, std::ios::binary);
        for (int i = 0; i < 200; ++i) out << "this is not a database, it is a text file line " << i << "\n";
    }
    ::chmod(file.c_str(), 0600);  // private, as a state file must be: refused for what it holds
    const auto before = file_bytes(file);
    auto queue = store::SqliteOutboundQueue::open(file, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message == file.string() +
                                       " is not an Aegis queue or is corrupt; move it aside with its -wal and -shm "
                                       "files (the next start makes an empty one)");
    CHECK(file_bytes(file) == before);
}

TEST_CASE("store: a queue written by a newer schema is refused, not reset", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        REQUIRE(queue->push(message(1)));
    }
    {
        auto db = store::Database::open(dir.file(), store::OpenMode::read_write);
        REQUIRE(db);
        REQUIRE((*db)->exec(fmt::format("PRAGMA user_version = {}", store::kSchemaVersion + 1)));
    }
    auto queue = store::SqliteOutboundQueue::open(dir.file(), {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message.find("newer Aegis") != std::string::npos);
    {
        auto db = store::Database::open(dir.file(), store::OpenMode::read_write);
        REQUIRE(db);
        auto rows = (*db)->query_int("SELECT count(*) FROM messages");
        REQUIRE(rows);
        CHECK(*rows == 1);  // still there
    }
}

TEST_CASE("store: a queue in a missing or unwritable directory fails with the path", "[store]") {
    TempDir dir;
    const auto missing = dir.path / "no-such-dir" / "queue.db";
    auto queue = store::SqliteOutboundQueue::open(missing, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::failure);
    CHECK(queue.error().message.find(missing.string()) != std::string::npos);
    CHECK(queue.error().message.find("cannot open") != std::string::npos);

    // Permissions do not stop root: the checks run in a child that drops to an unprivileged user.
    const auto locked = dir.path / "locked";
    std::filesystem::create_directory(locked);
    {
        auto existing = open_queue(dir.file());
        REQUIRE(existing->push(message(1)));
    }
    ::chmod(dir.path.c_str(), 0755);
    ::chmod(locked.c_str(), 0555);
    // The unprivileged user's own files, private but read-only to it.
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const auto name = dir.file().string() + suffix;
        if (!std::filesystem::exists(name)) continue;
        if (::geteuid() == 0) REQUIRE(::chown(name.c_str(), 65534, 65534) == 0);
        ::chmod(name.c_str(), 0400);
    }
    auto child = run_in_child([&](int out) {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 99;
        auto in_locked = store::SqliteOutboundQueue::open(locked / "queue.db", {});
        if (in_locked) return 10;
        write_text(out, in_locked.error().message + "\n");
        auto read_only = store::SqliteOutboundQueue::open(dir.file(), {});
        if (read_only) return 11;
        write_text(out, read_only.error().message + "\n");
        return static_cast<int>(read_only.error().exit) * 10 + static_cast<int>(in_locked.error().exit);
    });
    INFO(child.output);
    REQUIRE(WIFEXITED(child.status));
    CHECK(WEXITSTATUS(child.status) == 11);  // both ExitCode::failure
    CHECK(child.output.find((locked / "queue.db").string()) != std::string::npos);
    CHECK(child.output.find(dir.file().string()) != std::string::npos);
}

TEST_CASE("store: the queue, the id window and the inboxes share one database file", "[store]") {
    TempDir dir;
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto queue = store::SqliteOutboundQueue::open(*db, {});
    auto ids = store::DeliveredIds::open(*db, 10);
    auto inbox = store::DurableInbox::open(*db);
    REQUIRE((queue && ids && inbox));
    REQUIRE((*queue)->push(message(1)));
    CHECK((*ids)->first_sight(id_of(2)));
    REQUIRE((*ids)->flush());
    REQUIRE((*inbox)->create_cursor("c", {">"}, 0));
    REQUIRE((*inbox)->append({"c"}, {store::InboxEntry{id_of(3), "backend.all.policies", Bytes{3, 0, 1}}}));
    auto again = store::SqliteOutboundQueue::open(dir.file(), {});
    REQUIRE(again);
    CHECK((*again)->waiting() == 1);
    auto ids_again = store::DeliveredIds::open(dir.file(), 10);
    REQUIRE(ids_again);
    CHECK((*ids_again)->seen(id_of(2)));
}
