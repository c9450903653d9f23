// The persisted delivered-id window (DeliveredIds) on a real file in a temporary directory.

#include "store/dedup_store.h"

#include <catch2/catch.hpp>

#include "store/state_database.h"
#include "store_test_support.h"

namespace store = aegis::store;
using namespace aegis::test::store_support;

// ---------------------------------------------------------------------------------------------
// The delivered-id window

TEST_CASE("store: delivered ids are remembered across a restart", "[store]") {
    TempDir dir;
    {
        auto ids = store::DeliveredIds::open(dir.file(), 100);
        REQUIRE(ids);
        CHECK((*ids)->first_sight(id_of(1)));
        CHECK_FALSE((*ids)->first_sight(id_of(1)));
        CHECK((*ids)->first_sight(id_of(2)));
        CHECK((*ids)->pending() == 2);
        REQUIRE((*ids)->flush());
        CHECK((*ids)->pending() == 0);
        CHECK((*ids)->first_sight(id_of(3)));
        REQUIRE((*ids)->flush());
        CHECK((*ids)->first_sight(id_of(4)));  // never flushed: forgotten by the restart
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->size() == 3);
    CHECK_FALSE((*ids)->first_sight(id_of(1)));
    CHECK_FALSE((*ids)->first_sight(id_of(2)));
    CHECK_FALSE((*ids)->first_sight(id_of(3)));
    CHECK((*ids)->first_sight(id_of(4)));
}

TEST_CASE("store: ids of a delivery that could not be stored are forgotten", "[store]") {
    TempDir dir;
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->first_sight(id_of(1)));
    REQUIRE((*ids)->flush());
    CHECK((*ids)->first_sight(id_of(2)));
    CHECK((*ids)->first_sight(id_of(3)));
    (*ids)->forget_pending();
    CHECK((*ids)->pending() == 0);
    CHECK((*ids)->size() == 1);
    CHECK((*ids)->seen(id_of(1)));
    CHECK((*ids)->first_sight(id_of(2)));  // the redelivery is taken
    CHECK((*ids)->first_sight(id_of(3)));
}

TEST_CASE("store: the delivered-id window keeps the newest ids, in memory and on disk", "[store]") {
    TempDir dir;
    {
        auto ids = store::DeliveredIds::open(dir.file(), 100);
        REQUIRE(ids);
        for (std::uint32_t n = 0; n < 1000; ++n) {
            CHECK((*ids)->first_sight(id_of(n)));
            if (n % 50 == 49) REQUIRE((*ids)->flush());
        }
        CHECK((*ids)->size() == 100);
        CHECK((*ids)->first_sight(id_of(0)));  // long forgotten
    }
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        // One row per flush, its ids back to back.
        auto rows = (*db)->query_int("SELECT count(*) FROM delivered");
        REQUIRE(rows);
        CHECK(*rows >= 2);
        CHECK(*rows <= 4);
        auto stored = (*db)->query_int("SELECT sum(length(ids)) / 16 FROM delivered");
        REQUIRE(stored);
        CHECK(*stored >= 100);
        CHECK(*stored <= 100 + 64 + 50);  // pruned whole rows at a time, past a slack
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->size() == 100);
    CHECK_FALSE((*ids)->seen(id_of(899)));
    CHECK((*ids)->seen(id_of(900)));
    CHECK((*ids)->seen(id_of(999)));
}

TEST_CASE("store: delivered ids of a rolled-back transaction are neither kept nor stored", "[store]") {
    TempDir dir;
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto ids = store::DeliveredIds::open(*db, 100);
    REQUIRE(ids);
    for (std::uint32_t n = 0; n < 150; ++n) CHECK((*ids)->first_sight(id_of(n)));
    REQUIRE((*ids)->flush());
    for (std::uint32_t n = 150; n < 200; ++n) CHECK((*ids)->first_sight(id_of(n)));
    {
        auto transaction = (*db)->begin();
        REQUIRE(transaction);
        REQUIRE((*ids)->flush());  // would prune the first row: rolled back with it
    }                              // not committed
    CHECK((*ids)->pending() == 0);
    CHECK((*ids)->first_sight(id_of(150)));  // forgotten, so the redelivery is taken
    REQUIRE((*ids)->flush());
    auto rows = (*db)->query_int("SELECT count(*) FROM delivered");
    REQUIRE(rows);
    CHECK(*rows == 2);
    auto reopened = store::DeliveredIds::open(*db, 100);
    REQUIRE(reopened);
    CHECK((*reopened)->size() == 100);
    CHECK((*reopened)->seen(id_of(150)));
    CHECK((*reopened)->seen(id_of(51)));
    CHECK_FALSE((*reopened)->seen(id_of(50)));
    CHECK_FALSE((*reopened)->seen(id_of(151)));
}

TEST_CASE("store: the delivered ids of a schema 2 file (one row per id) are kept by the upgrade", "[store]") {
    TempDir dir;
    {
        auto db = store::Database::open(dir.file(), store::OpenMode::read_write_create);
        REQUIRE(db);
        REQUIRE((*db)->exec(R"sql(
CREATE TABLE messages (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, channel TEXT NOT NULL,
    priority INTEGER NOT NULL, count INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE messages_done (seq INTEGER PRIMARY KEY, done BLOB NOT NULL);
CREATE TABLE retries (id BLOB PRIMARY KEY, attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, channel TEXT NOT NULL,
    priority INTEGER NOT NULL, kind INTEGER NOT NULL, correlation BLOB NOT NULL, headers BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, dead_reason TEXT NOT NULL, dead_at_ms INTEGER NOT NULL);
CREATE TABLE delivered (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE);
CREATE TABLE cursors (name TEXT PRIMARY KEY, patterns BLOB NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, cursor TEXT NOT NULL, id BLOB NOT NULL,
    channel TEXT NOT NULL, envelope BLOB NOT NULL, UNIQUE (cursor, id));
)sql"));
        REQUIRE((*db)->exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = 2", store::kApplicationId)));
        auto insert = (*db)->prepare("INSERT INTO delivered (id) VALUES (?1)");
        REQUIRE(insert);
        for (std::uint32_t n = 0; n < 5000; ++n) {
            insert->reset();
            insert->bind(1, aegis::ByteView(id_of(n)));
            REQUIRE(insert->run());
        }
    }
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto version = (*db)->query_int("PRAGMA user_version");
    REQUIRE(version);
    CHECK(*version == store::kSchemaVersion);
    auto old_table = (*db)->query_int("SELECT count(*) FROM sqlite_master WHERE name = 'delivered_schema_2'");
    REQUIRE(old_table);
    CHECK(*old_table == 0);
    auto rows = (*db)->query_int("SELECT count(*) FROM delivered");
    REQUIRE(rows);
    CHECK(*rows == 2);  // 4,096 ids a row
    auto ids = store::DeliveredIds::open(*db, 10'000);
    REQUIRE(ids);
    CHECK((*ids)->size() == 5000);
    CHECK_FALSE((*ids)->first_sight(id_of(0)));
    CHECK_FALSE((*ids)->first_sight(id_of(4999)));
    CHECK((*ids)->first_sight(id_of(5000)));
}

TEST_CASE("store: a delivered row that is not whole ids is refused as corrupt", "[store]") {
    TempDir dir;
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        REQUIRE((*db)->exec("INSERT INTO delivered (ids) VALUES (X'0102030405')"));
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE_FALSE(ids);
    CHECK(ids.error().exit == aegis::ExitCode::bad_input);
    CHECK_THAT(ids.error().message, Catch::Contains("a delivered id cannot be read"));
}
