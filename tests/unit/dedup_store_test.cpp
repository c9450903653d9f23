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
        REQUIRE((*ids)->remember({id_of(3)}));
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
        auto rows = (*db)->query_int("SELECT count(*) FROM delivered");
        REQUIRE(rows);
        CHECK(*rows >= 100);
        CHECK(*rows <= 100 + 64);  // pruned in batches
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->size() == 100);
    CHECK_FALSE((*ids)->seen(id_of(899)));
    CHECK((*ids)->seen(id_of(900)));
    CHECK((*ids)->seen(id_of(999)));
}
