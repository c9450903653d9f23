// The durable outbound queue (SqliteOutboundQueue) on real files in a temporary directory:
// order and batching, acknowledgement, backoff, dead letters, limits and the operator API.
// Crashes are real: a child process is killed with SIGKILL or runs out of file size, and the
// parent reopens what it left.

#include "store/outbound_store.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "child_process.h"
#include "store/sqlite.h"
#include "store/state_database.h"
#include "store_test_support.h"

namespace store = aegis::store;
using namespace aegis::test::store_support;
using aegis::Bytes;
using aegis::ExitCode;
using aegis::protocol::Kind;
using aegis::protocol::MessageId;
using aegis::protocol::Priority;
using aegis::test::run_in_child;
using aegis::test::write_text;

// ---------------------------------------------------------------------------------------------
// The outbound queue

TEST_CASE("store: pushed messages survive a reopen, whole and in the same order", "[store]") {
    TempDir dir;
    store::OutboundMessage rich = message(7, "agent.a1.status", Priority::high, 0);
    rich.kind = Kind::request;
    rich.correlation = id_of(99);
    rich.headers = {{"content-type", "application/json"}, {"x-empty", ""}, {"x-big", std::string(70'000, 'v')}};
    rich.payload = Bytes{0, 1, 0, 255};
    rich.timestamp_ms = 1'700'000'000'123;
    rich.expires_ms = 1'800'000'000'000;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 5; ++n) REQUIRE(queue->push(message(n)));
        REQUIRE(queue->push(rich));
        REQUIRE(queue->push(message(8, "agent.a1.logs", Priority::normal, 0)));  // an empty payload
        CHECK(queue->waiting() == 7);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 7);
    CHECK(queue->in_flight() == 0);
    auto stored = queue->get(id_of(7));
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    const auto& back = (*stored)->message;
    CHECK(back.id == rich.id);
    CHECK(back.channel == rich.channel);
    CHECK(back.priority == rich.priority);
    CHECK(back.kind == rich.kind);
    CHECK(back.correlation == rich.correlation);
    CHECK(back.headers == rich.headers);
    CHECK(back.timestamp_ms == rich.timestamp_ms);
    CHECK(back.expires_ms == rich.expires_ms);
    CHECK(back.payload == rich.payload);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{7, 1, 2, 3, 4, 5, 8});
}

TEST_CASE("store: critical goes first, then by priority, then in arrival order", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "agent.a1.logs", Priority::low)));
    REQUIRE(queue->push(message(2, "agent.a1.logs", Priority::normal)));
    REQUIRE(queue->push(message(3, "agent.a1.logs", Priority::critical)));
    REQUIRE(queue->push(message(4, "agent.a1.logs", Priority::normal)));
    REQUIRE(queue->push(message(5, "agent.a1.logs", Priority::high)));
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{3, 5, 2, 4, 1});
    CHECK(queue->waiting() == 0);
    CHECK(queue->in_flight() == 5);
}

TEST_CASE("store: a batch is consecutive messages of one channel and priority, within its limits", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    for (std::uint32_t n = 1; n <= 5; ++n) REQUIRE(queue->push(message(n, "a.x")));
    REQUIRE(queue->push(message(6, "a.y")));
    REQUIRE(queue->push(message(7, "a.x")));
    REQUIRE(queue->push(message(8, "a.x", Priority::high)));
    REQUIRE(queue->push(message(9, "a.x", Priority::normal, 100)));
    REQUIRE(queue->push(message(10, "a.x", Priority::normal, 100)));
    std::vector<store::OutboundMessage> expired;
    const auto encoded = aegis::protocol::encoded_message_bytes({}, 10);  // a message of 10 bytes in a batch
    const store::BatchLimits three{3, 2 * encoded + 5};
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{8});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{1, 2});  // two fit, not three
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{3, 4, 5});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{6});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{7});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{9});  // larger: alone
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{10});
    CHECK(take(*queue, three, 0, expired).empty());
    CHECK(expired.empty());
    CHECK(queue->in_flight() == 10);
}

TEST_CASE("store: expire_due makes expired waiting messages dead letters without a take", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x", Priority::normal, 10, 500)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal, 10, 5'000)));
    REQUIRE(queue->push(message(3, "a.x")));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(queue->expire_due(1'000, expired));
    CHECK(numbers(expired) == std::vector<std::uint32_t>{1});
    CHECK(queue->waiting() == 2);
    CHECK(queue->dead() == 1);
    expired.clear();
    REQUIRE(queue->expire_due(2'000, expired));
    CHECK(expired.empty());
    REQUIRE(queue->expire_due(6'000, expired));
    CHECK(numbers(expired) == std::vector<std::uint32_t>{2});
    CHECK(queue->waiting() == 1);

    // An expired dead letter is not retried, unless with a fresh expiry.
    CHECK_FALSE(queue->retry(id_of(1), 6'000));
    auto retried = queue->retry_dead(6'000);
    REQUIRE(retried);
    CHECK(retried->count == 0);
    CHECK(retried->expired == 2);
    REQUIRE(queue->retry(id_of(1), 6'000, 60'000));
    CHECK(queue->waiting() == 2);
    auto stored = queue->get(id_of(1));
    REQUIRE(stored);
    REQUIRE(*stored);
    CHECK((*stored)->entry.expires_ms == 66'000);
}

TEST_CASE("store: headers count toward a batch's byte limit", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x")));
    auto with_headers = message(2, "a.x");
    with_headers.headers = {{"x-note", std::string(1000, 'v')}};
    REQUIRE(queue->push(with_headers));
    std::vector<store::OutboundMessage> expired;
    const store::BatchLimits limits{256, 500};  // both payloads would fit; the headers do not
    CHECK(numbers(take(*queue, limits, 0, expired)) == std::vector<std::uint32_t>{1});
    CHECK(numbers(take(*queue, limits, 0, expired)) == std::vector<std::uint32_t>{2});
}

TEST_CASE("store: acknowledged messages are gone for good", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
        std::vector<store::OutboundMessage> expired;
        auto batch = take(*queue, store::BatchLimits{2, 1 << 20}, 0, expired);
        REQUIRE(numbers(batch) == std::vector<std::uint32_t>{1, 2});
        REQUIRE(queue->acknowledge({id_of(1), id_of(2), id_of(42)}));  // an unknown id is ignored
        CHECK(queue->in_flight() == 0);
        CHECK(queue->waiting() == 2);
        REQUIRE(queue->acknowledge({id_of(1)}));  // twice: nothing happens
        CHECK(queue->waiting() == 2);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 2);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{3, 4});
    auto gone = queue->get(id_of(1));
    REQUIRE(gone);
    CHECK_FALSE(gone->has_value());
}

TEST_CASE("store: an acknowledgement deletes exactly its rows, and an id listed twice counts once", "[store]") {
    // In-flight rows are deleted by runs of consecutive row ids: the rows between two runs stay.
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 8; ++n) REQUIRE(queue->push(message(n, "agent.a1.logs", Priority::normal, n)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, store::BatchLimits{8, 1 << 20}, 0, expired).size() == 8);
        REQUIRE(queue->push(message(9, "agent.a1.logs", Priority::normal, 9)));
        CHECK(queue->live_bytes() == 45);  // 1 + 2 + ... + 9
        REQUIRE(queue->acknowledge({id_of(8), id_of(1), id_of(2), id_of(3), id_of(5), id_of(6), id_of(2), id_of(42)}));
        CHECK(queue->in_flight() == 2);  // 4 and 7
        CHECK(queue->waiting() == 1);    // 9
        CHECK(queue->live_bytes() == 4 + 7 + 9);
        for (const std::uint32_t n : {4U, 7U}) {
            auto kept = queue->get(id_of(n));
            REQUIRE((kept && kept->has_value()));
            CHECK((*kept)->entry.state == store::MessageState::in_flight);
        }
        for (const std::uint32_t n : {1U, 3U, 5U, 6U, 8U}) {
            auto gone = queue->get(id_of(n));
            REQUIRE(gone);
            CHECK_FALSE(gone->has_value());
        }
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->live_bytes() == 4 + 7 + 9);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{4, 7, 9});
}

TEST_CASE("store: messages in flight when the queue closed are waiting again at reopen", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
        REQUIRE(queue->in_flight() == 3);
    }  // closed without acknowledging
    auto queue = open_queue(dir.file());
    CHECK(queue->in_flight() == 0);
    CHECK(queue->waiting() == 4);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3, 4});
}

TEST_CASE("store: taking a batch writes nothing to the file, and acknowledging deletes the rows", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    std::vector<store::OutboundMessage> group;
    for (std::uint32_t n = 1; n <= 600; ++n) group.push_back(message(n, n <= 300 ? "a.x" : "a.y"));
    REQUIRE(queue->push_many(group));
    // PRAGMA data_version changes for a connection when another one commits.
    auto other = store::Database::open(dir.file(), store::OpenMode::read_write);
    REQUIRE(other);
    const auto version = [&] {
        auto value = (*other)->query_int("PRAGMA data_version");
        REQUIRE(value);
        return *value;
    };
    const auto before = version();
    std::vector<store::OutboundMessage> expired;
    std::vector<MessageId> taken;
    for (;;) {
        auto batch = take(*queue, store::BatchLimits{256, 1 << 20}, 0, expired);
        if (batch.empty()) break;
        for (const auto& m : batch) taken.push_back(m.id);
    }
    CHECK(taken.size() == 600);
    CHECK(queue->in_flight() == 600);
    CHECK(queue->waiting() == 0);
    CHECK(version() == before);  // nothing was committed
    auto listed = queue->list(store::MessageState::in_flight, 0);
    REQUIRE(listed);
    CHECK(listed->size() == 600);
    auto one = queue->get(id_of(5));
    REQUIRE((one && one->has_value()));
    CHECK((*one)->entry.state == store::MessageState::in_flight);

    REQUIRE(queue->acknowledge(taken));
    CHECK(version() != before);
    CHECK(queue->in_flight() == 0);
    auto rows = (*other)->query_int("SELECT count(*) FROM messages");
    REQUIRE(rows);
    CHECK(*rows == 0);
}

TEST_CASE("store: a priority a take found empty is read again after a push, a release or a due backoff", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 1'000));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(queue->push(message(1)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{1});
    CHECK(take(*queue, kLargeBatches, 0, expired).empty());  // every priority read to its end
    REQUIRE(queue->push(message(2, "agent.a1.logs", Priority::critical)));
    REQUIRE(queue->push(message(3, "agent.a1.logs", Priority::low)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{2});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{3});
    REQUIRE(queue->push(message(4)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{4});
    REQUIRE(queue->release({id_of(2)}, 0));  // backing off until 1,000
    REQUIRE(queue->release({id_of(3), id_of(4)}, 0));
    CHECK(take(*queue, kLargeBatches, 999, expired).empty());
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{2});
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{4});
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{3});
    CHECK(take(*queue, kLargeBatches, 1'000, expired).empty());
    queue->release_in_flight();  // a dropped session: all of it again, in order
    CHECK(drain_one_by_one(*queue, 5'000) == std::vector<std::uint32_t>{2, 1, 4, 3});
    CHECK(expired.empty());
}

TEST_CASE("store: a row id reused after the newest row was acknowledged is still taken", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    std::vector<store::OutboundMessage> expired;
    for (std::uint32_t n = 1; n <= 3; ++n) {
        REQUIRE(queue->push(message(n)));
        auto batch = take(*queue, kLargeBatches, 0, expired);
        REQUIRE(numbers(batch) == std::vector<std::uint32_t>{n});
        REQUIRE(queue->acknowledge({batch.front().id}));  // the table is empty again: the next row is row 1 again
    }
    REQUIRE(queue->push(message(10, "a.x", Priority::low)));
    REQUIRE(queue->push(message(11, "a.x", Priority::low)));
    CHECK(numbers(take(*queue, kOneAtATime, 0, expired)) == std::vector<std::uint32_t>{10});
    REQUIRE(queue->acknowledge({id_of(11)}));  // acknowledged while waiting (a resend of an earlier run)
    CHECK(queue->waiting() == 0);
    REQUIRE(queue->acknowledge({id_of(10)}));
    REQUIRE(queue->push(message(12, "a.x", Priority::low)));
    CHECK(numbers(take(*queue, kOneAtATime, 0, expired)) == std::vector<std::uint32_t>{12});
}

TEST_CASE("store: a rolled-back acknowledgement leaves its messages to be sent again", "[store]") {
    TempDir dir;
    auto database = store::open_state_database(dir.file());
    REQUIRE(database);
    auto opened = store::SqliteOutboundQueue::open(*database, {});
    REQUIRE(opened);
    auto& queue = **opened;
    for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue.push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(queue, kLargeBatches, 0, expired).size() == 4);
    {
        auto outer = (*database)->begin();
        REQUIRE(outer);
        REQUIRE(queue.acknowledge({id_of(1), id_of(2)}));
        {
            auto unfinished = (*database)->begin();  // never committed: the outer commit rolls back
            REQUIRE(unfinished);
        }
        REQUIRE_FALSE(outer->commit());
    }
    REQUIRE(queue.reload_counters());
    // 1 and 2 are stored still, and no longer known to be in flight: taken again. 3 and 4 stay in flight.
    CHECK(queue.waiting() == 2);
    CHECK(queue.in_flight() == 2);
    CHECK(drain_one_by_one(queue, 0) == std::vector<std::uint32_t>{1, 2});
    REQUIRE(queue.acknowledge({id_of(1), id_of(2), id_of(3), id_of(4)}));
    CHECK(queue.waiting() + queue.in_flight() == 0);
}

TEST_CASE("store: every push that returned survives kill -9 of the process", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    int acks[2];
    REQUIRE(::pipe(acks) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(acks[0]);
        auto queue = store::SqliteOutboundQueue::open(file, {});
        if (!queue) ::_exit(2);
        std::vector<store::OutboundMessage> expired;
        for (std::uint32_t n = 0;; n += 4) {
            // Single pushes and small groups, so the kill lands in either kind of transaction.
            if (!(*queue)->push(message(n))) ::_exit(3);
            std::vector<store::OutboundMessage> group{message(n + 1), message(n + 2), message(n + 3)};
            if (!(*queue)->push_many(std::move(group))) ::_exit(3);
            if (n == 40) (void)(*queue)->take_batch(store::BatchLimits{10, 1 << 20}, 0, expired);
            const std::uint32_t stored = n + 3;
            if (::write(acks[1], &stored, sizeof(stored)) != sizeof(stored)) ::_exit(4);
        }
    }
    ::close(acks[1]);
    std::uint32_t highest = 0;
    std::size_t reports = 0;
    std::uint32_t value = 0;
    while (::read(acks[0], &value, sizeof(value)) == sizeof(value)) {
        highest = value;
        if (++reports == 150) ::kill(pid, SIGKILL);  // mid-stream, without warning
    }
    ::close(acks[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    REQUIRE(highest >= 150 * 4 - 1);

    auto queue = open_queue(file);
    CHECK(queue->in_flight() == 0);  // the batch in flight at the kill waits again
    CHECK(queue->waiting() >= highest + 1);
    auto entries = queue->list(store::MessageState::waiting, 0);
    REQUIRE(entries);
    const auto order = numbers(*entries);
    // Every acknowledged push is there, in push order, and nothing else but whole later pushes.
    REQUIRE(order.size() == queue->waiting());
    for (std::uint32_t n = 0; n < order.size(); ++n) {
        if (order[n] != n) {
            FAIL("message " << n << " is missing or out of order (found " << order[n] << ")");
        }
    }
}

TEST_CASE("store: a released message waits out an exponential backoff before it is sent again", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 5'000));
    REQUIRE(queue->push(message(1)));
    std::vector<store::OutboundMessage> expired;
    std::uint64_t now = 0;
    const std::vector<std::uint64_t> expected_delays{1'000, 2'000, 4'000, 5'000, 5'000};
    for (std::size_t attempt = 0; attempt < expected_delays.size(); ++attempt) {
        REQUIRE(take(*queue, kOneAtATime, now, expired).size() == 1);
        now += 10;
        REQUIRE(queue->release({id_of(1)}, now));
        CHECK(queue->waiting() == 1);
        CHECK(queue->in_flight() == 0);
        const auto due = now + expected_delays[attempt];
        CHECK(take(*queue, kOneAtATime, due - 1, expired).empty());
        auto entry = queue->get(id_of(1));
        REQUIRE((entry && entry->has_value()));
        CHECK((*entry)->entry.attempts == attempt + 1);
        CHECK((*entry)->entry.next_attempt_ms == due);
        now = due;
    }
    CHECK(take(*queue, kOneAtATime, now, expired).size() == 1);
    CHECK(expired.empty());
}

TEST_CASE("store: backoff jitter stays within its cap and a message backing off does not hold others", "[store]") {
    TempDir dir;
    store::QueueOptions options;
    options.backoff = {1'000, 60'000, 0};
    auto queue = open_queue(dir.file(), {}, options);
    for (std::uint32_t n = 1; n <= 50; ++n) REQUIRE(queue->push(message(n, "a.x", Priority::critical)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, kLargeBatches, 0, expired).size() == 50);
    std::vector<MessageId> all;
    for (std::uint32_t n = 1; n <= 50; ++n) all.push_back(id_of(n));
    REQUIRE(queue->release(all, 5'000));
    auto entries = queue->list(std::nullopt, 0);
    REQUIRE(entries);
    std::set<std::uint64_t> distinct;
    for (const auto& entry : *entries) {
        CHECK(entry.next_attempt_ms >= 5'000);
        CHECK(entry.next_attempt_ms <= 6'000);
        distinct.insert(entry.next_attempt_ms);
    }
    CHECK(distinct.size() > 10);  // jittered, not one stampede

    REQUIRE(queue->push(message(51, "a.y", Priority::low)));
    // Every critical one still waits out its backoff, so the low one goes first.
    CHECK(numbers(take(*queue, kLargeBatches, 4'999, expired)) == std::vector<std::uint32_t>{51});
    CHECK(take(*queue, kLargeBatches, 6'000, expired).size() == 50);
}

TEST_CASE("store: released messages go back in their original order", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(100, 100));
    for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
    REQUIRE(queue->release({id_of(3), id_of(1), id_of(2)}, 0));
    CHECK(drain_one_by_one(*queue, 100) == std::vector<std::uint32_t>{1, 2, 3, 4});

    SECTION("release_in_flight puts everything in flight back at once, without backoff") {
        queue->release_in_flight();
        CHECK(queue->in_flight() == 0);
        CHECK(queue->waiting() == 4);
        CHECK(drain_one_by_one(*queue, 100) == std::vector<std::uint32_t>{1, 2, 3, 4});
    }
}

TEST_CASE("store: a message released too often becomes a dead letter", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(10, 10, 3));
    REQUIRE(queue->push(message(1)));
    std::vector<store::OutboundMessage> expired;
    std::uint64_t now = 0;
    for (int attempt = 1; attempt <= 3; ++attempt) {
        REQUIRE(take(*queue, kOneAtATime, now, expired).size() == 1);
        REQUIRE(queue->release({id_of(1)}, now));
        now += 10;
    }
    CHECK(queue->waiting() == 0);
    CHECK(queue->in_flight() == 0);
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(dead->size() == 1);
    CHECK(dead->front().dead_reason == "gave up after 3 attempts");
}

TEST_CASE("store: expired messages become dead letters with the reason and are reported", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x", Priority::normal, 10, 500)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal, 10, 0)));
    REQUIRE(queue->push(message(3, "a.x", Priority::normal, 10, 700)));
    std::vector<store::OutboundMessage> expired;
    auto batch = take(*queue, kLargeBatches, 600, expired);
    CHECK(numbers(batch) == std::vector<std::uint32_t>{2, 3});
    CHECK(numbers(expired) == std::vector<std::uint32_t>{1});
    CHECK(queue->in_flight() == 2);
    CHECK(queue->waiting() == 0);
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(dead->size() == 1);
    CHECK(number_of(dead->front().id) == 1);
    CHECK(dead->front().dead_reason == "expired");
    CHECK(dead->front().dead_at_ms == 600);
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == 1);
    CHECK(stats->bytes == 20);
    CHECK(stats->dead_bytes == 10);
}

TEST_CASE("store: a full queue refuses new messages and keeps the old ones", "[store]") {
    TempDir dir;
    SECTION("by count") {
        auto queue = open_queue(dir.file(), store::QueueLimits{3, 1 << 20, 100});
        for (std::uint32_t n = 1; n <= 3; ++n) REQUIRE(queue->push(message(n)));
        auto refused = queue->push(message(4));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::failure);
        CHECK(refused.error().message == "queue full (3 messages / 30 bytes, limit 3 messages / 1048576 bytes)");
        CHECK(queue->waiting() == 3);
        CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK_FALSE(queue->push(message(4)));  // in flight still counts
        REQUIRE(queue->acknowledge({id_of(1)}));
        CHECK(queue->push(message(4)));
    }
    SECTION("by bytes, and a group that does not fit is refused whole") {
        auto queue = open_queue(dir.file(), store::QueueLimits{100, 100, 100});
        REQUIRE(queue->push(message(1, "a.x", Priority::normal, 60)));
        CHECK_FALSE(queue->push(message(2, "a.x", Priority::normal, 50)));
        std::vector<store::OutboundMessage> group{message(3, "a.x", Priority::normal, 20),
                                                  message(4, "a.x", Priority::normal, 30)};
        auto refused = queue->push_many(std::move(group));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("queue full") == 0);
        auto entries = queue->list(std::nullopt, 0);
        REQUIRE(entries);
        CHECK(numbers(*entries) == std::vector<std::uint32_t>{1});
    }
}

TEST_CASE("store: push_many stores a group in one transaction, and a repeated id once", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        std::vector<store::OutboundMessage> group;
        for (std::uint32_t n = 1; n <= 100; ++n) group.push_back(message(n));
        group.push_back(message(5));  // the same message id again
        REQUIRE(queue->push_many(std::move(group)));
        CHECK(queue->waiting() == 100);
        REQUIRE(queue->push(message(7)));
        CHECK(queue->waiting() == 100);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 100);
}

TEST_CASE("store: requests, replies and heartbeats are committed without an fsync, anything else with one", "[store]") {
    TempDir dir;
    auto database = store::open_state_database(dir.file());
    REQUIRE(database);
    auto queue = store::SqliteOutboundQueue::open(*database, store::QueueLimits{});
    REQUIRE(queue);
    const auto synchronous = [&] { return (*database)->query_int("PRAGMA synchronous"); };
    auto request = message(1);
    request.kind = Kind::request;
    auto reply = message(2);
    reply.kind = Kind::reply;
    auto heartbeat = message(5);
    heartbeat.kind = Kind::heartbeat;
    REQUIRE((*queue)->push_many({request, reply, heartbeat}));
    CHECK(synchronous().value() == 1);  // NORMAL: in the log before the commit returns, synced at checkpoints
    auto another_request = message(3);
    another_request.kind = Kind::request;
    REQUIRE((*queue)->push_many({another_request, message(4)}));
    CHECK(synchronous().value() == 2);  // FULL: one event in the group syncs the whole commit
    CHECK((*queue)->waiting() == 5);
}

TEST_CASE("store: a full disk fails the push cleanly and keeps what was queued", "[store]") {
    TempDir dir;
    std::size_t stored = 0;
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        auto pages = (*db)->query_int("PRAGMA page_count");
        REQUIRE(pages);
        REQUIRE((*db)->exec(fmt::format("PRAGMA max_page_count = {}", *pages + 20)));
        auto opened = store::SqliteOutboundQueue::open(*db, {});
        REQUIRE(opened);
        auto& queue = **opened;
        aegis::Result<void> pushed;
        for (std::uint32_t n = 1; n < 1000 && pushed; ++n) {
            pushed = queue.push(message(n, "a.x", Priority::normal, 1000));
            if (pushed) ++stored;
        }
        REQUIRE_FALSE(pushed);
        CHECK(pushed.error().exit == ExitCode::failure);
        CHECK(pushed.error().message == "cannot write " + dir.file().string() + ": disk full");
        CHECK(queue.waiting() == stored);
        REQUIRE(stored > 10);

        std::vector<store::OutboundMessage> group;
        for (std::uint32_t n = 5000; n < 5100; ++n) group.push_back(message(n, "a.x", Priority::normal, 1000));
        CHECK_FALSE(queue.push_many(std::move(group)));  // all or nothing
        CHECK(queue.waiting() == stored);
        auto entries = queue.list(std::nullopt, 0);  // reading still works
        REQUIRE(entries);
        CHECK(entries->size() == stored);
        REQUIRE(queue.remove(id_of(1)));  // and so does deleting
        --stored;
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == stored);
    auto entries = queue->list(std::nullopt, 0);
    REQUIRE(entries);
    REQUIRE(entries->size() == stored);
    CHECK(number_of(entries->front().id) == 2);
    CHECK(number_of(entries->back().id) == stored + 1);
}

TEST_CASE("store: running out of file size in a child process leaves a consistent queue", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    { auto queue = open_queue(file); }
    auto child = run_in_child([&](int out) {
        auto queue = store::SqliteOutboundQueue::open(file, {});
        if (!queue) return 2;
        ::signal(SIGXFSZ, SIG_IGN);
        const rlimit limit{1024 * 1024, 1024 * 1024};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 3;
        std::uint32_t stored = 0;
        for (std::uint32_t n = 1; n < 100'000; ++n) {
            auto pushed = (*queue)->push(message(n, "a.x", Priority::normal, 2000));
            if (!pushed) {
                write_text(out, fmt::format("{}\n{}", stored, pushed.error().message));
                return static_cast<int>(pushed.error().exit);
            }
            stored = n;
        }
        return 4;
    });
    INFO(child.output);
    REQUIRE(WIFEXITED(child.status));
    CHECK(WEXITSTATUS(child.status) == static_cast<int>(ExitCode::failure));
    const auto newline = child.output.find('\n');
    REQUIRE(newline != std::string::npos);
    const auto stored = static_cast<std::size_t>(std::stoul(child.output.substr(0, newline)));
    const auto error = child.output.substr(newline + 1);
    CHECK((error.find("disk full") != std::string::npos || error.find("I/O error") != std::string::npos));
    CHECK(error.find(file.string()) != std::string::npos);
    REQUIRE(stored > 10);

    auto queue = open_queue(file);
    CHECK(queue->waiting() == stored);
    REQUIRE(queue->push(message(999'999)));  // and it still works
}

TEST_CASE("store: refused messages become dead letters; the operator lists, retries and purges them", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    for (std::uint32_t n = 1; n <= 6; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, store::BatchLimits{4, 1 << 20}, 0, expired).size() == 4);
    REQUIRE(queue->dead_letter({id_of(1), id_of(2)}, "refused", 0));
    REQUIRE(queue->dead_letter({id_of(3)}, "not allowed to publish on agent.a1.logs", 77));
    CHECK(queue->waiting() == 2);
    CHECK(queue->in_flight() == 1);

    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(numbers(*dead) == std::vector<std::uint32_t>{1, 2, 3});
    CHECK((*dead)[0].dead_reason == "refused");
    CHECK((*dead)[2].dead_reason == "not allowed to publish on agent.a1.logs");
    CHECK((*dead)[2].dead_at_ms == 77);
    CHECK((*dead)[2].payload_bytes == 10);

    auto limited = queue->list(std::nullopt, 2);
    REQUIRE(limited);
    CHECK(limited->size() == 2);

    auto in_flight_retry = queue->retry(id_of(4));
    REQUIRE_FALSE(in_flight_retry);
    CHECK(in_flight_retry.error().message.find("being sent") != std::string::npos);
    auto unknown = queue->retry(id_of(42));
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message == "no message 0000002a0000000000000000000000a5 in the queue");

    REQUIRE(queue->retry(id_of(2)));
    CHECK(queue->waiting() == 3);
    auto retried = queue->get(id_of(2));
    REQUIRE((retried && retried->has_value()));
    CHECK((*retried)->entry.state == store::MessageState::waiting);
    CHECK((*retried)->entry.attempts == 0);
    CHECK((*retried)->entry.dead_reason.empty());

    auto all_dead = queue->retry_dead(0);
    REQUIRE(all_dead);
    CHECK(all_dead->count == 2);
    CHECK(queue->waiting() == 5);
    // Queued again behind what waits at their priority, the dead letters in their own order.
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{5, 6, 2, 1, 3});

    REQUIRE(queue->dead_letter({id_of(5), id_of(6)}, "refused", 0));
    auto purged = queue->purge_dead();
    REQUIRE(purged);
    CHECK(*purged == 2);
    REQUIRE(queue->remove(id_of(1)));
    CHECK_FALSE(queue->remove(id_of(1)));
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == 0);
    CHECK(stats->in_flight == 3);  // 2 and 3 taken again, and 4
    auto everything = queue->purge_all();
    REQUIRE(everything);
    CHECK(*everything == 3);
    CHECK(queue->waiting() + queue->in_flight() == 0);
}

TEST_CASE("store: the dead-letter list is bounded, oldest first out", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), store::QueueLimits{1000, 1 << 20, 10});
    for (std::uint32_t n = 1; n <= 25; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, kLargeBatches, 0, expired).size() == 25);
    for (std::uint32_t n = 1; n <= 25; ++n) REQUIRE(queue->dead_letter({id_of(n)}, "refused", n));
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    CHECK(dead->size() <= 10);
    CHECK(dead->size() >= 9);
    CHECK(number_of(dead->back().id) == 25);
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == dead->size());
}

TEST_CASE("store: stats count bytes and the oldest waiting message", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    auto empty = queue->stats();
    REQUIRE(empty);
    CHECK(empty->oldest_waiting_ms == 0);
    REQUIRE(queue->push(message(5, "a.x", Priority::normal, 40)));
    REQUIRE(queue->push(message(3, "a.x", Priority::low, 2)));
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->waiting == 2);
    CHECK(stats->bytes == 42);
    CHECK(stats->oldest_waiting_ms == 1'003);
    CHECK(stats->file_bytes > 0);
}

TEST_CASE("store: deferred messages wait without counting an attempt, and the rest of the queue goes on", "[store]") {
    TempDir dir;
    // One attempt allowed: a release would make a dead letter at once; a deferral must not.
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 60'000, 1));
    REQUIRE(
        queue->push_many({message(1, "agent.a1.logs"), message(2, "agent.a1.logs"), message(3, "agent.a1.status")}));
    std::vector<store::OutboundMessage> expired;
    auto logs = queue->take_batch(kLargeBatches, 100, expired);
    REQUIRE(logs);
    CHECK(numbers(*logs) == std::vector<std::uint32_t>{1, 2});
    for (int round = 0; round < 5; ++round) {  // refused again and again: never given up
        INFO("round " << round);
        REQUIRE(queue->defer({id_of(1), id_of(2)}, 10'000));
        CHECK(queue->waiting() == 3);
        CHECK(queue->in_flight() == 0);
        // Before 10 s the other channel goes; 1 and 2 stay back without holding it up.
        auto other = queue->take_batch(kLargeBatches, 200, expired);
        REQUIRE(other);
        CHECK(numbers(*other) == std::vector<std::uint32_t>{3});
        auto none = queue->take_batch(kLargeBatches, 200, expired);
        REQUIRE(none);
        CHECK(none->empty());
        queue->release_in_flight();  // 3 waits again, as after a lost session
        auto due = queue->take_batch(kLargeBatches, 10'000, expired);
        REQUIRE(due);
        CHECK(numbers(*due) == std::vector<std::uint32_t>{1, 2});
    }
    CHECK(queue->dead() == 0);
    auto listed = queue->list(std::nullopt, 0);
    REQUIRE(listed);
    CHECK(listed->size() == 3);
    for (const auto& entry : *listed) CHECK(entry.attempts == 0);
    CHECK(expired.empty());
}

TEST_CASE("store: undeferring a channel makes its waiting messages due at once, others keep their backoff", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 60'000));
    REQUIRE(queue->push_many({message(1, "agent.a1.logs"), message(2, "agent.a1.status")}));
    std::vector<store::OutboundMessage> expired;
    auto first = queue->take_batch(kOneAtATime, 100, expired);
    auto second = queue->take_batch(kOneAtATime, 100, expired);
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(queue->defer({id_of(1)}, 50'000));
    REQUIRE(queue->release({id_of(2)}, 100));  // a regular backoff: due at 1100
    auto none = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(none);
    CHECK(none->empty());
    REQUIRE(queue->undefer_channel("agent.a1.logs"));
    auto now_due = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(now_due);
    CHECK(numbers(*now_due) == std::vector<std::uint32_t>{1});
    auto still_none = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(still_none);
    CHECK(still_none->empty());
}

// ---------------------------------------------------------------------------------------------
// Throughput, reported rather than asserted (the figures depend on the disk).

// ---------------------------------------------------------------------------------------------
// One row per publish

namespace {

// The rows of the queue's table and the done marks on file, read by a connection of its own.
struct OnFile {
    std::int64_t rows = 0;
    std::int64_t marked = 0;
    std::int64_t retries = 0;
    std::int64_t dead = 0;
};

[[nodiscard]] OnFile on_file(const std::filesystem::path& file) {
    auto db = store::Database::open(file, store::OpenMode::read_only);
    REQUIRE(db);
    OnFile out;
    auto rows = (*db)->query_int("SELECT count(*) FROM messages");
    auto marked = (*db)->query_int("SELECT count(*) FROM messages_done");
    auto retries = (*db)->query_int("SELECT count(*) FROM retries");
    auto dead = (*db)->query_int("SELECT count(*) FROM dead_letters");
    REQUIRE((rows && marked && retries && dead));
    out.rows = *rows;
    out.marked = *marked;
    out.retries = *retries;
    out.dead = *dead;
    return out;
}

[[nodiscard]] std::vector<store::OutboundMessage> numbered(std::uint32_t first, std::uint32_t last,
                                                           const std::string& channel = "agent.a1.logs",
                                                           Priority priority = Priority::normal) {
    std::vector<store::OutboundMessage> out;
    for (std::uint32_t n = first; n <= last; ++n) out.push_back(message(n, channel, priority));
    return out;
}

}  // namespace

TEST_CASE("store: a publish is one row; consecutive messages of one channel and priority share it", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push_many(numbered(1, 10)));
    CHECK(on_file(dir.file()).rows == 1);
    // A channel or a priority change starts a row; so does the row's size limit.
    auto mixed = numbered(11, 12, "a.x");
    mixed.push_back(message(13, "a.y"));
    mixed.push_back(message(14, "a.y", Priority::high));
    REQUIRE(queue->push_many(mixed));
    CHECK(on_file(dir.file()).rows == 4);
    const auto per_row = store::SqliteOutboundQueue::kMaxRowMessages;
    REQUIRE(queue->push_many(numbered(100, static_cast<std::uint32_t>(99 + per_row + 1), "a.z")));
    CHECK(on_file(dir.file()).rows == 6);
    CHECK(queue->waiting() == 14 + per_row + 1);
    // The send order is the index's: high first, then arrival, whatever row holds a message.
    std::vector<store::OutboundMessage> expired;
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{14});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) ==
          std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{11, 12});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{13});
    auto spanning = take(*queue, kLargeBatches, 0, expired);  // two rows, one batch
    CHECK(spanning.size() == per_row + 1);
    CHECK(number_of(spanning.back().id) == 99 + per_row + 1);
    CHECK(spanning.back().payload == Bytes(10, static_cast<std::uint8_t>(99 + per_row + 1)));
}

TEST_CASE("store: a partly acknowledged row keeps only its unacknowledged messages, and a restart resends those",
          "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        REQUIRE(queue->push_many(numbered(1, 8)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
        REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
        REQUIRE(queue->acknowledge({id_of(1), id_of(2), id_of(3), id_of(5)}));  // one write for the row
        const auto file = on_file(dir.file());
        CHECK(file.rows == 1);
        CHECK(file.marked == 1);
        CHECK(queue->in_flight() == 2);  // 4 and 6
        CHECK(queue->waiting() == 2);    // 7 and 8
        CHECK(queue->live_bytes() == 40);
        auto gone = queue->get(id_of(2));
        REQUIRE(gone);
        CHECK_FALSE(gone->has_value());
        auto listed = queue->list(std::nullopt, 0);
        REQUIRE(listed);
        CHECK(numbers(*listed) == std::vector<std::uint32_t>{4, 6, 7, 8});
    }  // closed with 4 and 6 in flight, as a killed broker would leave them
    {
        auto queue = open_queue(dir.file());
        CHECK(queue->waiting() == 4);
        CHECK(queue->in_flight() == 0);
        CHECK(queue->live_bytes() == 40);
        std::vector<store::OutboundMessage> expired;
        auto again = take(*queue, kLargeBatches, 0, expired);
        CHECK(numbers(again) == std::vector<std::uint32_t>{4, 6, 7, 8});  // only the unacknowledged ones
        REQUIRE(queue->acknowledge({id_of(4), id_of(6), id_of(7), id_of(8)}));
        const auto file = on_file(dir.file());
        CHECK(file.rows == 0);  // all done: the row and its marks are gone
        CHECK(file.marked == 0);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() + queue->in_flight() == 0);
}

TEST_CASE("store: priorities across rows: the higher one goes first whatever its row", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push_many(numbered(1, 3, "a.x", Priority::low)));
    REQUIRE(queue->push_many(numbered(4, 6, "a.x", Priority::normal)));
    REQUIRE(queue->push_many(numbered(7, 8, "a.x", Priority::critical)));
    REQUIRE(queue->push_many(numbered(9, 10, "a.x", Priority::normal)));
    std::vector<store::OutboundMessage> expired;
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{7, 8});
    // Two rows of one channel and priority make one batch.
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{4, 5, 6, 9, 10});
    REQUIRE(queue->release({id_of(5)}, 0));  // back in its place, due at once (jitter 0..base)
    queue->release_in_flight();
    CHECK(drain_one_by_one(*queue, 10'000'000) == std::vector<std::uint32_t>{7, 8, 4, 5, 6, 9, 10, 1, 2, 3});
}

TEST_CASE("store: a row's messages expire one by one", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    std::vector<store::OutboundMessage> row;
    for (std::uint32_t n = 1; n <= 6; ++n)
        row.push_back(message(n, "a.x", Priority::normal, 10, n % 2 == 0 ? 500 : 0));  // even ones expire at 500
    REQUIRE(queue->push_many(row));
    REQUIRE(on_file(dir.file()).rows == 1);
    std::vector<store::OutboundMessage> expired;
    CHECK(numbers(take(*queue, store::BatchLimits{2, 1 << 20}, 400, expired)) == std::vector<std::uint32_t>{1, 2});
    CHECK(expired.empty());
    CHECK(numbers(take(*queue, kLargeBatches, 500, expired)) == std::vector<std::uint32_t>{3, 5});
    CHECK(numbers(expired) == std::vector<std::uint32_t>{4, 6});
    CHECK(queue->dead() == 2);
    auto dead = queue->get(id_of(4));
    REQUIRE((dead && dead->has_value()));
    CHECK((*dead)->entry.state == store::MessageState::dead);
    CHECK((*dead)->entry.dead_reason == "expired");
    CHECK((*dead)->message.payload == Bytes(10, 4));
    // 2 was in flight when it expired: the gateway's answer decides.
    REQUIRE(queue->acknowledge({id_of(1), id_of(2), id_of(3), id_of(5)}));
    const auto file = on_file(dir.file());
    CHECK(file.rows == 0);
    CHECK(file.dead == 2);
}

TEST_CASE("store: backoffs and dead letters are rows of their own, and survive a reopen", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 1'000, 3));
        REQUIRE(queue->push_many(numbered(1, 4)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, kLargeBatches, 0, expired).size() == 4);
        REQUIRE(queue->release({id_of(2)}, 0, "busy"));
        REQUIRE(queue->dead_letter({id_of(3)}, "refused", 5));
        REQUIRE(queue->acknowledge({id_of(1)}));
        const auto file = on_file(dir.file());
        CHECK(file.rows == 1);
        CHECK(file.retries == 1);
        CHECK(file.dead == 1);
    }
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 1'000, 3));
    CHECK(queue->waiting() == 2);  // 2 backing off, 4 sent again
    CHECK(queue->dead() == 1);
    auto backing_off = queue->get(id_of(2));
    REQUIRE((backing_off && backing_off->has_value()));
    CHECK((*backing_off)->entry.attempts == 1);
    CHECK((*backing_off)->entry.next_attempt_ms == 1'000);
    CHECK(drain_one_by_one(*queue, 999) == std::vector<std::uint32_t>{4});
    CHECK(drain_one_by_one(*queue, 1'000) == std::vector<std::uint32_t>{2});
    REQUIRE(queue->release({id_of(2)}, 1'000));
    REQUIRE(queue->release({id_of(2)}, 1'000));  // not in flight: nothing happens
    CHECK(drain_one_by_one(*queue, 2'000) == std::vector<std::uint32_t>{2});
    REQUIRE(queue->release({id_of(2)}, 2'000, "still busy"));  // the third attempt: a dead letter
    auto given_up = queue->get(id_of(2));
    REQUIRE((given_up && given_up->has_value()));
    CHECK((*given_up)->entry.state == store::MessageState::dead);
    CHECK((*given_up)->entry.dead_reason == "gave up after 3 attempts: still busy");
    CHECK(on_file(dir.file()).retries == 0);
}

TEST_CASE("store: a queue of the first schema is moved to one row per publish in one transaction", "[store]") {
    TempDir dir;
    // The first schema's queue as its code wrote it: one row per message, its state in the row.
    const auto make_schema_1 = [&](const std::filesystem::path& file, bool damaged) {
        auto db = store::Database::open(file, store::OpenMode::read_write_create);
        REQUIRE(db);
        REQUIRE((*db)->exec(R"sql(
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, channel TEXT NOT NULL, priority INTEGER NOT NULL,
    kind INTEGER NOT NULL, correlation BLOB NOT NULL, headers BLOB NOT NULL, timestamp_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'in_flight', 'dead')),
    dead_reason TEXT, dead_at_ms INTEGER);
CREATE TABLE delivered (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE);
CREATE TABLE cursors (name TEXT PRIMARY KEY, patterns BLOB NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, cursor TEXT NOT NULL, id BLOB NOT NULL,
    channel TEXT NOT NULL, envelope BLOB NOT NULL, UNIQUE (cursor, id));
CREATE INDEX inbox_by_cursor ON inbox (cursor, seq);
CREATE INDEX messages_waiting ON messages (priority, seq) WHERE state = 'waiting';
CREATE INDEX messages_dead ON messages (dead_at_ms, seq) WHERE state = 'dead';
)sql"));
        REQUIRE((*db)->exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = 1", store::kApplicationId)));
        auto insert = (*db)->prepare(
            "INSERT INTO messages (id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, "
            "payload, attempts, next_attempt_ms, state, dead_reason, dead_at_ms) "
            "VALUES (?1, ?2, ?3, 0, zeroblob(16), X'0001016b0000000176', ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)");
        REQUIRE(insert);
        struct Old {
            std::uint32_t n;
            int priority;
            std::uint32_t attempts;
            std::uint64_t next_attempt_ms;
            const char* state;
        };
        for (const auto& old : {Old{1, 2, 0, 0, "waiting"}, Old{2, 2, 0, 0, "in_flight"}, Old{3, 0, 0, 0, "waiting"},
                                Old{4, 2, 2, 9'000, "waiting"}, Old{5, 2, 1, 0, "dead"}}) {
            insert->reset();
            const Bytes payload(5, static_cast<std::uint8_t>(old.n));
            insert->bind(1, aegis::ByteView(id_of(old.n)))
                .bind(2, std::string_view("agent.a1.logs"))
                .bind(3, damaged && old.n == 4 ? 99 : old.priority)
                .bind(4, std::uint64_t{1'000} + old.n)
                .bind(5, aegis::ByteView(payload))
                .bind(6, static_cast<std::int64_t>(old.attempts))
                .bind(7, old.next_attempt_ms)
                .bind(8, std::string_view(old.state));
            if (std::string_view(old.state) == "dead") {
                insert->bind(9, std::string_view("refused")).bind(10, std::uint64_t{77});
            } else {
                insert->bind_null(9).bind_null(10);
            }
            REQUIRE(insert->run());
        }
    };

    SECTION("every message, backoff and dead letter moves") {
        make_schema_1(dir.file(), false);
        auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 1'000));
        auto db = store::Database::open(dir.file(), store::OpenMode::read_only);
        REQUIRE(db);
        auto version = (*db)->query_int("PRAGMA user_version");
        REQUIRE(version);
        CHECK(*version == store::kSchemaVersion);
        auto old_table = (*db)->query_int("SELECT count(*) FROM sqlite_master WHERE name = 'messages_schema_1'");
        REQUIRE(old_table);
        CHECK(*old_table == 0);
        CHECK(queue->waiting() == 4);  // the one in flight waits again
        CHECK(queue->dead() == 1);
        CHECK(queue->live_bytes() == 20);
        auto stored = queue->get(id_of(1));
        REQUIRE((stored && stored->has_value()));
        CHECK((*stored)->message.headers == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});
        CHECK((*stored)->message.timestamp_ms == 1'001);
        CHECK((*stored)->message.payload == Bytes(5, 1));
        auto backing_off = queue->get(id_of(4));
        REQUIRE((backing_off && backing_off->has_value()));
        CHECK((*backing_off)->entry.attempts == 2);
        CHECK((*backing_off)->entry.next_attempt_ms == 9'000);
        auto dead = queue->get(id_of(5));
        REQUIRE((dead && dead->has_value()));
        CHECK((*dead)->entry.state == store::MessageState::dead);
        CHECK((*dead)->entry.dead_reason == "refused");
        CHECK((*dead)->entry.dead_at_ms == 77);
        CHECK((*dead)->entry.attempts == 1);
        CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{3, 1, 2});
        CHECK(drain_one_by_one(*queue, 9'000) == std::vector<std::uint32_t>{4});
    }
    SECTION("a row that cannot be read leaves the file as it was") {
        make_schema_1(dir.file(), true);
        auto queue = store::SqliteOutboundQueue::open(dir.file(), {});
        REQUIRE_FALSE(queue);
        CHECK(queue.error().exit == ExitCode::bad_input);
        auto db = store::Database::open(dir.file(), store::OpenMode::read_only);
        REQUIRE(db);
        auto version = (*db)->query_int("PRAGMA user_version");
        auto rows = (*db)->query_int("SELECT count(*) FROM messages WHERE state IS NOT NULL");
        REQUIRE((version && rows));
        CHECK(*version == 1);
        CHECK(*rows == 5);
    }
}

TEST_CASE("store: throughput of grouped and single pushes", "[store][.bench]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    using Clock = std::chrono::steady_clock;
    std::vector<store::OutboundMessage> group;
    for (std::uint32_t n = 0; n < 10'000; ++n) group.push_back(message(n, "agent.a1.logs", Priority::normal, 100));
    auto start = Clock::now();
    REQUIRE(queue->push_many(std::move(group)));
    const double grouped = std::chrono::duration<double>(Clock::now() - start).count();

    constexpr int kSingles = 300;
    start = Clock::now();
    for (std::uint32_t n = 0; n < kSingles; ++n)
        REQUIRE(queue->push(message(100'000 + n, "agent.a1.logs", Priority::normal, 100)));
    const double singles = std::chrono::duration<double>(Clock::now() - start).count();

    std::vector<store::OutboundMessage> expired;
    start = Clock::now();
    std::size_t taken = 0;
    for (;;) {
        auto batch = take(*queue, store::BatchLimits{256, 1 << 20}, 0, expired);
        if (batch.empty()) break;
        taken += batch.size();
        std::vector<MessageId> batch_ids;
        for (const auto& m : batch) batch_ids.push_back(m.id);
        REQUIRE(queue->acknowledge(batch_ids));
    }
    const double drained = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(taken == 10'000 + kSingles);
    WARN(fmt::format("push_many: 10000 x 100 B in {:.3f} s = {:.0f} messages/s", grouped, 10'000 / grouped));
    WARN(fmt::format("single push (synchronous=FULL): {} in {:.3f} s = {:.0f} pushes/s", kSingles, singles,
                     kSingles / singles));
    WARN(fmt::format("take_batch(256) + acknowledge: {} in {:.3f} s = {:.0f} messages/s", taken, drained,
                     static_cast<double>(taken) / drained));
}
