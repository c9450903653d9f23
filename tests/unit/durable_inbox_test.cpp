// The durable inboxes of named cursors (DurableInbox) on a real file in a temporary directory.

#include "store/durable_inbox.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "store/state_database.h"
#include "store_test_support.h"

namespace store = aegis::store;
using namespace aegis::test::store_support;
using aegis::Bytes;

// ---------------------------------------------------------------------------------------------
// Durable inboxes

namespace {

[[nodiscard]] store::InboxEntry entry(std::uint32_t n, std::string channel = "backend.all.policies") {
    return store::InboxEntry{id_of(n), std::move(channel), Bytes{static_cast<std::uint8_t>(n), 0, 1}};
}

[[nodiscard]] std::vector<std::uint32_t> numbers(const std::vector<store::InboxItem>& items) {
    std::vector<std::uint32_t> out;
    for (const auto& item : items) out.push_back(number_of(item.id));
    return out;
}

}  // namespace

TEST_CASE("store: a durable inbox keeps messages per cursor until consumed, across a restart", "[store]") {
    TempDir dir;
    std::uint64_t second = 0;
    {
        auto inbox = store::DurableInbox::open(dir.file());
        REQUIRE(inbox);
        auto& in = **inbox;
        REQUIRE(in.create_cursor("nightly", {"backend.all.>"}, 5));
        REQUIRE(in.create_cursor("audit", {"backend.*.policies", "backend.a1.>"}, 6));
        auto added = in.append({"nightly", "audit", "nobody"}, {entry(1), entry(2), entry(3)});
        REQUIRE(added);
        CHECK(*added == 6);
        added = in.append({"nightly"}, {entry(4, "backend.all.tests")});
        REQUIRE(added);
        CHECK(*added == 1);
        added = in.append({"nightly", "audit"}, {entry(2), entry(3)});  // redelivered: not stored twice
        REQUIRE(added);
        CHECK(*added == 0);

        auto items = in.read_after("nightly", 0, 0);
        REQUIRE(items);
        CHECK(numbers(*items) == std::vector<std::uint32_t>{1, 2, 3, 4});
        CHECK((*items)[3].channel == "backend.all.tests");
        CHECK((*items)[0].envelope == Bytes{1, 0, 1});
        for (std::size_t i = 1; i < items->size(); ++i) CHECK((*items)[i].sequence > (*items)[i - 1].sequence);
        second = (*items)[1].sequence;
        auto page = in.read_after("nightly", (*items)[0].sequence, 2);
        REQUIRE(page);
        CHECK(numbers(*page) == std::vector<std::uint32_t>{2, 3});

        REQUIRE(in.advance("nightly", second));
        auto audit = in.read_after("audit", 0, 0);
        REQUIRE(audit);
        CHECK(numbers(*audit) == std::vector<std::uint32_t>{1, 2, 3});  // another cursor is untouched
    }
    auto inbox = store::DurableInbox::open(dir.file());
    REQUIRE(inbox);
    auto& in = **inbox;
    auto items = in.read_after("nightly", 0, 0);
    REQUIRE(items);
    CHECK(numbers(*items) == std::vector<std::uint32_t>{3, 4});
    auto info = in.cursor("nightly");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->position == second);
    CHECK((*info)->pending == 2);
    CHECK((*info)->patterns == std::vector<std::string>{"backend.all.>"});
    CHECK((*info)->created_ms == 5);

    REQUIRE(in.advance("nightly", 1));  // never backwards
    info = in.cursor("nightly");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->position == second);

    auto all = in.cursors();
    REQUIRE(all);
    REQUIRE(all->size() == 2);
    CHECK(all->front().name == "audit");
    CHECK(all->front().patterns == std::vector<std::string>{"backend.*.policies", "backend.a1.>"});

    auto unknown = in.read_after("nobody", 0, 0);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message == "no durable subscription named 'nobody'");
    CHECK_FALSE(in.advance("nobody", 5));

    auto removed = in.remove_cursor("audit");
    REQUIRE(removed);
    CHECK(*removed);
    removed = in.remove_cursor("audit");
    REQUIRE(removed);
    CHECK_FALSE(*removed);
    auto rows = store::open_state_database(dir.file());
    REQUIRE(rows);
    auto audit_rows = (*rows)->query_int("SELECT count(*) FROM inbox WHERE cursor = 'audit'");
    REQUIRE(audit_rows);
    CHECK(*audit_rows == 0);
}

TEST_CASE("store: a full inbox drops its oldest messages and counts them", "[store]") {
    TempDir dir;
    auto inbox = store::DurableInbox::open(dir.file(), store::InboxLimits{5});
    REQUIRE(inbox);
    auto& in = **inbox;
    REQUIRE(in.create_cursor("slow", {">"}, 0));
    std::vector<store::InboxEntry> entries;
    for (std::uint32_t n = 1; n <= 8; ++n) entries.push_back(entry(n));
    REQUIRE(in.append({"slow"}, entries));
    auto items = in.read_after("slow", 0, 0);
    REQUIRE(items);
    CHECK(numbers(*items) == std::vector<std::uint32_t>{4, 5, 6, 7, 8});
    auto info = in.cursor("slow");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->dropped == 3);
    CHECK((*info)->pending == 5);
    CHECK(in.pending("slow") == 5);
    CHECK(in.pending("nobody") == 0);
}
