// The broker's durable cursors (broker/durable_cursors.h) against inboxes in memory and fake
// local clients: subscribing (new, kept, busy, changed patterns), storing what matches, the
// backlog and its window, acks committed together, listing, deleting and refusals.

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/durable_cursors.h"
#include "fake_peer.h"
#include "ipc/codec.h"

namespace broker = aegis::broker;
namespace store = aegis::store;
using aegis::Error;
using aegis::ExitCode;
using aegis::Result;
using aegis::test::FakePeer;
using nlohmann::json;
using Patterns = std::vector<std::string>;

namespace {

// Inboxes in memory: one sequence across every cursor, at most `max_per_cursor` kept each.
class FakeStore final : public broker::CursorStore {
public:
    struct Cursor {
        Patterns patterns;
        std::uint64_t position = 0;
        std::uint64_t created_ms = 0;
        std::vector<store::InboxItem> items;
    };

    Result<void> create_cursor(const std::string& name, const Patterns& patterns, std::uint64_t now_ms) override {
        if (fail_writes) return Error{ExitCode::failure, "disk full", 0};
        auto [it, made] = by_name.try_emplace(name);
        it->second.patterns = patterns;
        if (made) it->second.created_ms = now_ms;
        return {};
    }
    Result<bool> remove_cursor(const std::string& name) override {
        if (fail_writes) return Error{ExitCode::failure, "disk full", 0};
        return by_name.erase(name) != 0;
    }
    Result<std::vector<store::CursorInfo>> cursors() const override {
        std::vector<store::CursorInfo> out;
        for (const auto& [name, cursor] : by_name) {
            out.push_back(
                store::CursorInfo{name, cursor.patterns, cursor.position, 0, cursor.items.size(), cursor.created_ms});
        }
        return out;
    }
    Result<std::optional<store::CursorInfo>> cursor(const std::string& name) const override {
        const auto it = by_name.find(name);
        if (it == by_name.end()) return std::optional<store::CursorInfo>{};
        store::CursorInfo info{name, it->second.patterns, it->second.position, 0, it->second.items.size(), 0};
        return std::optional<store::CursorInfo>(std::move(info));
    }
    std::size_t pending(const std::string& name) const override {
        const auto it = by_name.find(name);
        return it == by_name.end() ? 0 : it->second.items.size();
    }
    Result<std::size_t> append(const Patterns& names, const std::vector<store::InboxEntry>& entries) override {
        if (fail_writes) return Error{ExitCode::failure, "disk full", 0};
        std::size_t added = 0;
        for (const auto& name : names) {
            auto& items = by_name.at(name).items;
            for (const auto& entry : entries) {
                items.push_back(store::InboxItem{++sequence, entry.id, entry.channel, entry.envelope});
                ++added;
            }
            while (items.size() > max_per_cursor) items.erase(items.begin());
        }
        return added;
    }
    Result<std::vector<store::InboxItem>> read_after(const std::string& name, std::uint64_t after,
                                                     std::size_t limit) const override {
        std::vector<store::InboxItem> out;
        for (const auto& item : by_name.at(name).items) {
            if (item.sequence > after && out.size() < limit) out.push_back(item);
        }
        return out;
    }
    Result<void> advance(const std::string& name, std::uint64_t position) override {
        ++advances;
        auto& cursor = by_name.at(name);
        cursor.position = std::max(cursor.position, position);
        std::erase_if(cursor.items, [&](const store::InboxItem& item) { return item.sequence <= position; });
        return {};
    }

    std::map<std::string, Cursor> by_name;
    std::uint64_t sequence = 0;
    std::size_t max_per_cursor = 100'000;
    bool fail_writes = false;
    int advances = 0;
};

[[nodiscard]] aegis::protocol::Envelope envelope(std::uint8_t n, std::string channel) {
    aegis::protocol::Envelope out;
    out.id[0] = n;
    out.channel = std::move(channel);
    out.payload = {n};
    return out;
}

struct Fixture {
    FakeStore* inboxes = nullptr;
    std::vector<std::string> lines;
    std::unique_ptr<broker::DurableCursors> cursors;
    std::vector<std::shared_ptr<FakePeer>> peers;

    Fixture() {
        auto owned = std::make_unique<FakeStore>();
        inboxes = owned.get();
        cursors = std::make_unique<broker::DurableCursors>(std::move(owned),
                                                           [this](std::string_view line) { lines.emplace_back(line); });
    }

    std::shared_ptr<FakePeer> client() {
        peers.push_back(std::make_shared<FakePeer>(peers.size() + 1));
        return peers.back();
    }
    // A client subscribes to `name`: the subscriber for the subscription changes, or the error.
    std::variant<broker::PendingSubscribe, aegis::ipc::WireError> subscribe(const std::shared_ptr<FakePeer>& peer,
                                                                            const std::string& name, Patterns patterns,
                                                                            bool reset = false) {
        aegis::ipc::SubscribeRequest request{std::move(patterns), name, reset};
        return cursors->subscribe(broker::Waiter{peer, 7}, peer->id(), std::move(request), 1000);
    }
    // Subscribed and attached at once (the gateway's set covers it).
    void attach(const std::shared_ptr<FakePeer>& peer, const std::string& name, Patterns patterns) {
        auto subscribed = subscribe(peer, name, std::move(patterns));
        REQUIRE(std::holds_alternative<broker::PendingSubscribe>(subscribed));
        (void)cursors->attach(std::get<broker::PendingSubscribe>(subscribed));
    }
};

// The messages a client was given: their cursor_seq, in order.
[[nodiscard]] std::vector<std::uint64_t> given(const FakePeer& peer) {
    std::vector<std::uint64_t> out;
    for (const auto& header : peer.headers()) {
        if (header.value("event", "") == "message") out.push_back(header["cursor_seq"]);
    }
    return out;
}

}  // namespace

TEST_CASE("broker durable cursors: a new cursor is made, kept patterns are checked, one client at a time",
          "[broker][durable]") {
    Fixture f;
    const auto first = f.client();
    auto subscribed = f.subscribe(first, "nightly", {"backend.all.>"});
    REQUIRE(std::holds_alternative<broker::PendingSubscribe>(subscribed));
    const auto& pending = std::get<broker::PendingSubscribe>(subscribed);
    CHECK(pending.durable == "nightly");
    CHECK_FALSE(pending.previous);  // a new cursor
    CHECK(f.inboxes->by_name.at("nightly").created_ms == 1000);
    CHECK(f.cursors->patterns() == Patterns{"backend.all.>"});
    CHECK(f.cursors->size() == 1);

    CHECK_FALSE(f.cursors->attach(pending));
    REQUIRE_FALSE(first->headers().empty());
    CHECK(first->headers()[0]["ok"] == true);
    CHECK(first->headers()[0]["backlog"] == 0);
    CHECK(f.lines.back() == "durable subscription nightly attached (0 stored message(s))");

    // A second client while the first reads it: busy.
    const auto second = f.client();
    auto busy = f.subscribe(second, "nightly", {"backend.all.>"});
    REQUIRE(std::holds_alternative<aegis::ipc::WireError>(busy));
    CHECK(std::get<aegis::ipc::WireError>(busy).reason == "cursor_busy");

    // Once the first has gone: other patterns need a reset, and the previous ones are kept for a refusal.
    f.cursors->detach(first->id());
    CHECK(f.lines.back() == "durable subscription nightly detached; storing for it");
    auto differ = f.subscribe(second, "nightly", {"backend.a1.>"});
    REQUIRE(std::holds_alternative<aegis::ipc::WireError>(differ));
    CHECK(std::get<aegis::ipc::WireError>(differ).reason == "patterns_differ");
    CHECK(std::get<aegis::ipc::WireError>(differ).exit == ExitCode::usage);
    auto reset = f.subscribe(second, "nightly", {"backend.a1.>"}, true);
    REQUIRE(std::holds_alternative<broker::PendingSubscribe>(reset));
    CHECK(std::get<broker::PendingSubscribe>(reset).previous == Patterns{"backend.all.>"});
    CHECK(f.inboxes->by_name.at("nightly").patterns == Patterns{"backend.a1.>"});

    // The gateway refuses the new set: the cursor goes back to what it had.
    f.cursors->refuse(std::get<broker::PendingSubscribe>(reset), {"access_denied", "no", ExitCode::refused}, 2000);
    CHECK(f.cursors->patterns() == Patterns{"backend.all.>"});
    CHECK(f.inboxes->by_name.at("nightly").patterns == Patterns{"backend.all.>"});
    CHECK(second->headers().back()["error"]["reason"] == "access_denied");
}

TEST_CASE("broker durable cursors: a refused new cursor is gone, a failed write refuses the subscribe",
          "[broker][durable]") {
    Fixture f;
    const auto peer = f.client();
    auto subscribed = f.subscribe(peer, "new", {"backend.zz.>"});
    REQUIRE(std::holds_alternative<broker::PendingSubscribe>(subscribed));
    f.cursors->refuse(std::get<broker::PendingSubscribe>(subscribed), {"access_denied", "no", ExitCode::refused}, 0);
    CHECK(f.cursors->size() == 0);
    CHECK(f.inboxes->by_name.empty());

    f.inboxes->fail_writes = true;
    auto failed = f.subscribe(peer, "other", {"backend.all.>"});
    REQUIRE(std::holds_alternative<aegis::ipc::WireError>(failed));
    CHECK(std::get<aegis::ipc::WireError>(failed).message == "disk full");
    CHECK(f.cursors->size() == 0);
}

TEST_CASE("broker durable cursors: deliveries are stored for the cursors they match and given to the attached client",
          "[broker][durable]") {
    Fixture f;
    const auto reader = f.client();
    (void)f.subscribe(f.client(), "away", {"backend.a1.>"});  // no client attached: stores only
    auto subscribed = f.subscribe(reader, "all", {"backend.all.>", "backend.a1.logs"});
    REQUIRE(std::holds_alternative<broker::PendingSubscribe>(subscribed));

    REQUIRE(f.cursors->store({envelope(1, "backend.all.x"), envelope(2, "backend.a1.logs"), envelope(3, "agent.b.y")}));
    CHECK(f.inboxes->pending("all") == 2);
    CHECK(f.inboxes->pending("away") == 1);
    CHECK(f.cursors->take_dropped().empty());
    std::vector<std::uint64_t> stored;
    for (const auto& item : f.inboxes->by_name.at("all").items) stored.push_back(item.sequence);

    // Attached: the backlog, then "caught_up" once.
    CHECK_FALSE(f.cursors->attach(std::get<broker::PendingSubscribe>(subscribed)));
    CHECK(f.cursors->attached() == Patterns{"all"});
    CHECK(reader->headers().front()["backlog"] == 2);
    CHECK(given(*reader) == stored);
    CHECK(f.cursors->delivered() == 2);
    CHECK(reader->headers().back()["event"] == "caught_up");
    CHECK(reader->headers().back()["cursor_seq"] == stored.back());

    // Live from now on.
    REQUIRE(f.cursors->store({envelope(4, "backend.all.z")}));
    CHECK_FALSE(f.cursors->send_backlog("all"));
    REQUIRE(given(*reader).size() == 3);
    CHECK(given(*reader).back() == f.inboxes->sequence);
    CHECK(reader->headers().back()["event"] == "message");
    CHECK_FALSE(f.cursors->send_backlog("all"));  // nothing new: nothing sent
    CHECK(given(*reader).size() == 3);

    // A client that has gone is detached when something would be sent to it.
    reader->open = false;
    CHECK_FALSE(f.cursors->send_backlog("all"));
    CHECK(f.cursors->attached().empty());

    // A store that cannot write: the delivery is not stored (and not acknowledged by the broker).
    f.inboxes->fail_writes = true;
    CHECK_FALSE(f.cursors->store({envelope(5, "backend.all.z")}));
}

TEST_CASE("broker durable cursors: a full inbox reports what it dropped", "[broker][durable]") {
    Fixture f;
    f.inboxes->max_per_cursor = 2;
    (void)f.subscribe(f.client(), "small", {"backend.all.>"});
    REQUIRE(
        f.cursors->store({envelope(1, "backend.all.a"), envelope(2, "backend.all.b"), envelope(3, "backend.all.c")}));
    const auto dropped = f.cursors->take_dropped();
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0] == std::pair<std::string, std::uint64_t>{"small", 1});
    CHECK(f.cursors->take_dropped().empty());
}

TEST_CASE("broker durable cursors: the backlog waits while the client's socket is full", "[broker][durable]") {
    Fixture f;
    const auto slow = f.client();
    (void)f.subscribe(slow, "slow", {"backend.all.>"});
    std::vector<aegis::protocol::Envelope> many;
    for (std::uint32_t n = 0; n < broker::kBacklogChunk + 10; ++n) many.push_back(envelope(1, "backend.all.x"));
    REQUIRE(f.cursors->store(many));
    slow->queued = broker::kBacklogWindowBytes;  // nothing written yet
    auto subscribed = f.subscribe(slow, "slow", {"backend.all.>"});
    REQUIRE(std::holds_alternative<broker::PendingSubscribe>(subscribed));
    CHECK(f.cursors->attach(std::get<broker::PendingSubscribe>(subscribed)));  // resume later
    CHECK(given(*slow).empty());
    CHECK(slow->headers().back()["backlog"] == broker::kBacklogChunk + 10);
    // Asked again before the wait is over: no second wait.
    CHECK_FALSE(f.cursors->send_backlog("slow"));
    slow->queued = 0;  // drained
    CHECK_FALSE(f.cursors->resume("slow"));
    CHECK(given(*slow).size() == broker::kBacklogChunk + 10);
    CHECK(f.cursors->resume("nobody") == false);
}

TEST_CASE("broker durable cursors: acks of a turn are committed together, each answered", "[broker][durable]") {
    Fixture f;
    const auto reader = f.client();
    f.attach(reader, "c", {"backend.all.>"});
    REQUIRE(f.cursors->store({envelope(1, "backend.all.a"), envelope(2, "backend.all.b")}));
    const auto before = reader->frames.size();

    CHECK(f.cursors->ack(broker::Waiter{reader, 10}, aegis::ipc::AckRequest{"c", 1}));        // the first: commit
    CHECK_FALSE(f.cursors->ack(broker::Waiter{reader, 11}, aegis::ipc::AckRequest{"c", 2}));  // rides along
    CHECK_FALSE(f.cursors->ack(broker::Waiter{reader, 12}, aegis::ipc::AckRequest{"nope", 1}));
    REQUIRE(reader->frames.size() == before + 1);  // only the unknown cursor answered yet
    CHECK(reader->headers().back()["error"]["reason"] == "not_found");

    f.cursors->commit_acks();
    CHECK(f.inboxes->advances == 1);
    CHECK(f.inboxes->by_name.at("c").position == 2);
    CHECK(f.inboxes->pending("c") == 0);
    const auto headers = reader->headers();
    REQUIRE(headers.size() == before + 3);
    CHECK(headers[before + 1]["id"] == 10);
    CHECK(headers[before + 2]["id"] == 11);
    CHECK(headers[before + 2]["ok"] == true);
    // The next ack starts a new commit.
    CHECK(f.cursors->ack(broker::Waiter{reader, 13}, aegis::ipc::AckRequest{"c", 2}));
}

TEST_CASE("broker durable cursors: list and delete", "[broker][durable]") {
    Fixture f;
    const auto reader = f.client();
    const auto admin = f.client();
    f.attach(reader, "busy", {"backend.all.>"});
    (void)f.subscribe(f.client(), "idle", {"backend.a1.>"});

    f.cursors->list(broker::Waiter{admin, 1});
    const auto list = admin->headers().back()["cursors"];
    REQUIRE(list.size() == 2);
    CHECK(list[0]["name"] == "busy");
    CHECK(list[0]["attached"] == true);
    CHECK(list[1]["attached"] == false);

    CHECK_FALSE(f.cursors->remove(broker::Waiter{admin, 2}, {"busy"}).has_value());  // its client would wait forever
    CHECK(admin->headers().back()["error"]["reason"] == "cursor_busy");
    CHECK(f.cursors->remove(broker::Waiter{admin, 3}, {"idle"}) == std::optional<bool>(true));
    CHECK(f.lines.back() == "durable subscription idle deleted");
    CHECK(f.cursors->remove(broker::Waiter{admin, 4}, {"idle"}) == std::optional<bool>(false));
    CHECK(f.cursors->patterns() == Patterns{"backend.all.>"});
}

TEST_CASE("broker durable cursors: the cursors on file are loaded", "[broker][durable]") {
    Fixture f;
    f.inboxes->by_name["a"].patterns = {"backend.all.>"};
    f.inboxes->by_name["b"].patterns = {"backend.a1.x"};
    auto loaded = f.cursors->load();
    REQUIRE(loaded);
    CHECK(*loaded == 2);
    auto patterns = f.cursors->patterns();
    std::sort(patterns.begin(), patterns.end());
    CHECK(patterns == Patterns{"backend.a1.x", "backend.all.>"});
}
