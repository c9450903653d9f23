// The durable inboxes of named cursors (DurableInbox) on a real file in a temporary directory.

#include "store/durable_inbox.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/dedup_store.h"
#include "store/sqlite.h"
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

// ---------------------------------------------------------------------------------------------
// One commit per delivery: the receiving broker stores a delivery's inbox entries and its
// delivered ids in one transaction of its own, which the inboxes' and the ids' own join.

namespace {

struct DeliveryStores {
    std::shared_ptr<store::Database> db;
    std::unique_ptr<store::DurableInbox> inbox;
    std::unique_ptr<store::DeliveredIds> ids;

    explicit DeliveryStores(const std::filesystem::path& file) {
        auto opened = store::open_state_database(file);
        REQUIRE(opened);
        db = std::move(*opened);
        auto inboxes = store::DurableInbox::open(db);
        REQUIRE(inboxes);
        inbox = std::move(*inboxes);
        auto delivered = store::DeliveredIds::open(db, 100'000);
        REQUIRE(delivered);
        ids = std::move(*delivered);
    }
    // Inbox entries for both cursors and the ids of messages first..last, as the broker stores a delivery.
    [[nodiscard]] aegis::Result<void> store_parts(std::uint32_t first, std::uint32_t last) {
        std::vector<store::InboxEntry> entries;
        for (std::uint32_t n = first; n <= last; ++n) {
            CHECK(ids->first_sight(id_of(n)));
            if (n < first + 3) entries.push_back(entry(n));
        }
        if (auto added = inbox->append({"nightly"}, entries); !added) return added.take_error();
        if (auto added = inbox->append({"audit"}, {entries.front()}); !added) return added.take_error();
        return ids->flush();
    }
    // Messages first..last stored as one delivery and committed.
    void store_delivery(std::uint32_t first, std::uint32_t last) {
        auto delivery = db->begin(store::Durability::process_crash);
        REQUIRE(delivery);
        REQUIRE(store_parts(first, last));
        REQUIRE(delivery->commit());
    }
    [[nodiscard]] std::int64_t rows(const char* table) const {
        auto count = db->query_int(fmt::format("SELECT count(*) FROM {}", table));
        REQUIRE(count);
        return *count;
    }
    // The ids the delivered rows hold (one row per commit, 16 bytes an id).
    [[nodiscard]] std::int64_t delivered_ids() const {
        auto count = db->query_int("SELECT coalesce(sum(length(ids)), 0) / 16 FROM delivered");
        REQUIRE(count);
        return *count;
    }
};

}  // namespace

TEST_CASE("store: a delivery's inbox entries and ids commit together, in memory as on disk", "[store]") {
    TempDir dir;
    DeliveryStores stores(dir.file());
    REQUIRE(stores.inbox->create_cursor("nightly", {">"}, 0));
    REQUIRE(stores.inbox->create_cursor("audit", {">"}, 0));
    stores.store_delivery(1, 10);
    CHECK(stores.inbox->pending("nightly") == 3);
    CHECK(stores.inbox->pending("audit") == 1);
    CHECK(stores.ids->pending() == 0);
    CHECK(stores.ids->seen(id_of(10)));
    CHECK(stores.rows("inbox") == 4);
    CHECK(stores.delivered_ids() == 10);

    SECTION("every part stored, then the commit fails: nothing of it is left, on disk or in memory") {
        {
            auto delivery = stores.db->begin(store::Durability::process_crash);
            REQUIRE(delivery);
            REQUIRE(stores.store_parts(11, 20));
            CHECK(stores.inbox->pending("nightly") == 6);  // counted at once inside the delivery
            {
                auto failed_part = stores.db->begin();  // a later part fails: not committed
                REQUIRE(failed_part);
            }
            auto committed = delivery->commit();
            REQUIRE_FALSE(committed);
            CHECK(committed.error().message.find("nothing was written") != std::string::npos);
        }
        stores.ids->forget_pending();  // what the broker does with a delivery it could not store
    }
    SECTION("the disk fills up at the ids: the inbox entries stored before them go back too") {
        auto pages = stores.db->query_int("PRAGMA page_count");
        REQUIRE(pages);
        REQUIRE(stores.db->exec(fmt::format("PRAGMA max_page_count = {}", *pages + 2)));
        {
            auto delivery = stores.db->begin(store::Durability::process_crash);
            REQUIRE(delivery);
            auto stored = stores.store_parts(11, 5000);  // 5,000 ids do not fit in 2 pages
            REQUIRE_FALSE(stored);
            CHECK(stored.error().message.find("disk full") != std::string::npos);
            CHECK(stores.inbox->pending("nightly") == 6);
        }  // not committed: rolled back
        stores.ids->forget_pending();
        REQUIRE(stores.db->exec("PRAGMA max_page_count = 1073741823"));
    }
    CHECK(stores.inbox->pending("nightly") == 3);
    CHECK(stores.inbox->pending("audit") == 1);
    CHECK(stores.rows("inbox") == 4);
    CHECK(stores.delivered_ids() == 10);
    CHECK(stores.ids->pending() == 0);
    CHECK(stores.ids->seen(id_of(10)));
    CHECK_FALSE(stores.ids->seen(id_of(11)));  // the redelivery is taken, not dropped as a copy
    CHECK_FALSE(stores.ids->seen(id_of(20)));
    CHECK(stores.ids->size() == 10);

    // The redelivery is stored whole, once.
    stores.store_delivery(11, 20);
    CHECK(stores.inbox->pending("nightly") == 6);
    CHECK(stores.inbox->pending("audit") == 2);
    CHECK(stores.rows("inbox") == 8);
    CHECK(stores.delivered_ids() == 20);
    auto items = stores.inbox->read_after("nightly", 0, 0);
    REQUIRE(items);
    CHECK(numbers(*items) == std::vector<std::uint32_t>{1, 2, 3, 11, 12, 13});
}

TEST_CASE("store: on_outcome follows the outermost transaction, newest first", "[store]") {
    TempDir dir;
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    std::vector<std::string> seen;
    (*db)->on_outcome([&](bool committed) { seen.push_back(committed ? "now" : "never"); });
    CHECK(seen == std::vector<std::string>{"now"});  // no transaction: what was written is committed
    for (const bool commit : {true, false}) {
        seen.clear();
        auto begun = (*db)->begin(store::Durability::process_crash);
        REQUIRE(begun);
        std::optional<store::Transaction> outer(std::move(*begun));
        (*db)->on_outcome([&](bool committed) { seen.push_back(fmt::format("first {}", committed)); });
        {
            auto inner = (*db)->begin();
            REQUIRE(inner);
            (*db)->on_outcome([&](bool committed) { seen.push_back(fmt::format("second {}", committed)); });
            REQUIRE(inner->commit());
        }
        CHECK(seen.empty());  // the inner commit settles nothing
        if (commit) {
            REQUIRE(outer->commit());
        } else {
            outer.reset();  // rolled back
        }
        const auto outcome = commit ? "true" : "false";
        CHECK(seen == std::vector<std::string>{fmt::format("second {}", outcome), fmt::format("first {}", outcome)});
    }
}
