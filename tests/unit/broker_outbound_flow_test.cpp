// The broker's outbound flow (broker/outbound_flow.h) against a fake queue and a fake session:
// group commits, the window of batches in flight, answers, and the clients waiting for acks.

#include <catch2/catch.hpp>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "broker/outbound_flow.h"

namespace broker = aegis::broker;
namespace store = aegis::store;
using aegis::Error;
using aegis::ExitCode;
using aegis::Result;
using aegis::protocol::Kind;
using aegis::protocol::MessageId;
using aegis::protocol::SignedBatch;

namespace {

[[nodiscard]] MessageId id_of(std::uint32_t n) {
    MessageId id{};
    id[0] = static_cast<std::uint8_t>(n >> 8);
    id[1] = static_cast<std::uint8_t>(n);
    return id;
}

[[nodiscard]] store::OutboundMessage message(std::uint32_t n, std::string channel = "agent.a1.logs",
                                             std::size_t payload = 10) {
    store::OutboundMessage out;
    out.id = id_of(n);
    out.channel = std::move(channel);
    out.payload.assign(payload, static_cast<std::uint8_t>(n));
    return out;
}

[[nodiscard]] broker::PendingPublish publish(std::uint32_t n, std::size_t payload = 10) {
    broker::PendingPublish pending;
    pending.waiter.request_id = n;
    pending.messages.push_back(message(n, "agent.a1.logs", payload));
    return pending;
}

// The queue in memory: messages in arrival order, a batch is the first ones of one channel.
class FakeQueue final : public broker::OutboundQueue {
public:
    Result<void> commit(const std::vector<store::OutboundMessage>& messages,
                        const std::vector<MessageId>& acknowledged) override {
        commits.emplace_back(messages.size(), acknowledged);
        if (fail_commits > 0) {
            --fail_commits;
            return Error{ExitCode::failure, "disk full", 0};
        }
        waiting_messages.insert(waiting_messages.end(), messages.begin(), messages.end());
        removed.insert(removed.end(), acknowledged.begin(), acknowledged.end());
        return {};
    }

    Result<std::vector<store::OutboundMessage>> take_batch(const store::BatchLimits& limits, std::uint64_t now_ms,
                                                           std::vector<store::OutboundMessage>& expired) override {
        takes_at.push_back(now_ms);
        if (fail_takes) return Error{ExitCode::failure, "cannot read", 0};
        while (!waiting_messages.empty() && waiting_messages.front().expires_ms != 0 &&
               waiting_messages.front().expires_ms <= now_ms) {
            expired.push_back(std::move(waiting_messages.front()));
            waiting_messages.pop_front();
        }
        std::vector<store::OutboundMessage> batch;
        if (backing_off) return batch;
        while (!waiting_messages.empty() && batch.size() < limits.max_messages &&
               (batch.empty() || waiting_messages.front().channel == batch.front().channel)) {
            batch.push_back(std::move(waiting_messages.front()));
            waiting_messages.pop_front();
            ++in_flight;
        }
        return batch;
    }

    void release_in_flight() override { ++releases; }
    [[nodiscard]] std::size_t waiting() const override { return waiting_messages.size(); }

    std::deque<store::OutboundMessage> waiting_messages;
    std::vector<std::pair<std::size_t, std::vector<MessageId>>> commits;  // (messages, acknowledged)
    std::vector<MessageId> removed;
    std::vector<std::uint64_t> takes_at;
    std::size_t in_flight = 0;
    int fail_commits = 0;
    bool fail_takes = false;
    bool backing_off = false;
    int releases = 0;
};

class FakeSession final : public broker::BatchPublisher {
public:
    std::optional<std::uint32_t> publish(const SignedBatch& batch) override {
        if (lost) return std::nullopt;
        sent.push_back(batch.messages.size());
        return next_request_id++;
    }
    std::vector<std::size_t> sent;  // messages per batch
    std::uint32_t next_request_id = 1;
    bool lost = false;
};

// Seals every batch (a signed batch with as many envelopes as messages).
[[nodiscard]] std::optional<SignedBatch> seal_all(std::vector<store::OutboundMessage> batch,
                                                  const broker::BatchInFlight&) {
    SignedBatch out;
    out.messages.resize(batch.size());
    return out;
}

// One message to each channel, numbered from 1: each a batch of its own.
void one_per_channel(FakeQueue& queue, const std::vector<std::string>& channels) {
    std::uint32_t n = 0;
    for (const auto& channel : channels) queue.waiting_messages.push_back(message(++n, channel));
}

void fill(FakeQueue& queue, std::uint32_t count, std::size_t payload = 10) {
    for (std::uint32_t n = 1; n <= count; ++n) queue.waiting_messages.push_back(message(n, "agent.a1.logs", payload));
}

}  // namespace

TEST_CASE("broker outbound flow: publishes of a turn and acknowledged messages go in one commit",
          "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    CHECK_FALSE(flow.has_commit_work());
    CHECK_FALSE(flow.add(publish(1, 5)));
    broker::PendingPublish refused;
    refused.refused = aegis::ipc::WireError{"queue_full", "full", ExitCode::failure};
    CHECK_FALSE(flow.add(std::move(refused)));
    CHECK_FALSE(flow.add(publish(2, 7)));
    CHECK(flow.pending_messages() == 2);
    CHECK(flow.pending_bytes() == 12);
    flow.acknowledged({id_of(40), id_of(41)});
    CHECK(flow.has_unremoved());

    auto flushed = flow.flush(queue);
    CHECK_FALSE(flushed.store_error);
    CHECK_FALSE(flushed.removal_error);
    CHECK(flushed.messages == 2);
    REQUIRE(flushed.group.size() == 3);  // answered in order, the refused one too
    CHECK(flushed.group[0].messages.front().id == id_of(1));
    CHECK(flushed.group[1].refused);
    REQUIRE(queue.commits.size() == 1);
    CHECK(queue.commits[0].first == 2);
    CHECK(queue.commits[0].second == std::vector<MessageId>{id_of(40), id_of(41)});
    CHECK(queue.waiting() == 2);
    CHECK_FALSE(flow.has_commit_work());
    CHECK(flow.pending_messages() == 0);
    CHECK(flow.pending_bytes() == 0);
}

TEST_CASE("broker outbound flow: a full group asks to be committed at once", "[broker][outbound]") {
    broker::OutboundFlow flow;
    bool full = false;
    std::uint32_t added = 0;
    while (!full) full = flow.add(publish(++added, 1));
    CHECK(added == broker::kMaxGroupCommit);
}

TEST_CASE("broker outbound flow: a failed commit stores nothing, and acknowledged messages are still removed",
          "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    queue.fail_commits = 1;
    CHECK_FALSE(flow.add(publish(1)));
    flow.acknowledged({id_of(9)});
    auto flushed = flow.flush(queue);
    REQUIRE(flushed.store_error);
    CHECK(flushed.store_error->message == "disk full");
    CHECK_FALSE(flushed.removal_error);
    REQUIRE(queue.commits.size() == 2);
    CHECK(queue.commits[1].first == 0);  // the removal alone
    CHECK(queue.removed == std::vector<MessageId>{id_of(9)});
    CHECK(queue.waiting() == 0);

    SECTION("a failed removal is reported too") {
        queue.fail_commits = 2;
        flow.acknowledged({id_of(10)});
        auto again = flow.flush(queue);
        CHECK_FALSE(again.store_error);  // there were no messages to store
        CHECK(again.removal_error);
    }
}

TEST_CASE("broker outbound flow: the window sends small batches eagerly, then only full ones", "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    FakeSession session;
    one_per_channel(queue, {"a.x", "a.y", "a.z"});
    auto taken = flow.take(queue, 1'234, seal_all);
    CHECK(taken.batches.size() == broker::kEagerBatchesInFlight);  // the third waits for an answer
    CHECK_FALSE(taken.error);
    CHECK(queue.takes_at == std::vector<std::uint64_t>{1'234, 1'234});  // time as given, no clock
    flow.send(std::move(taken.batches), session, queue);
    CHECK(flow.batches_in_flight() == 2);
    CHECK(flow.bytes_in_flight() == 20);
    CHECK(flow.take(queue, 1'300, seal_all).batches.empty());

    auto flight = flow.answered(1);
    REQUIRE(flight);
    CHECK(flight->channel == "a.x");
    CHECK(flight->ids == std::vector<MessageId>{id_of(1)});
    CHECK(flow.bytes_in_flight() == 10);
    CHECK_FALSE(flow.answered(1));  // answered once
    CHECK(flow.take(queue, 1'400, seal_all).batches.size() == 1);

    SECTION("with a full batch waiting, the window fills up to its limit") {
        broker::OutboundFlow busy;
        FakeQueue deep;
        FakeSession link;
        const std::size_t full = store::BatchLimits{}.max_messages;
        fill(deep, static_cast<std::uint32_t>(full * (broker::kMaxBatchesInFlight + 2)), 1);
        auto batches = busy.take(deep, 0, seal_all);
        CHECK(batches.batches.size() == broker::kMaxBatchesInFlight);
        busy.send(std::move(batches.batches), link, deep);
        CHECK(busy.window_full());
        CHECK(link.sent == std::vector<std::size_t>(broker::kMaxBatchesInFlight, full));
    }
}

TEST_CASE("broker outbound flow: what a take finds expired, backing off or unreadable is said", "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    auto stale = message(1);
    stale.expires_ms = 100;
    queue.waiting_messages.push_back(stale);
    queue.waiting_messages.push_back(message(2));
    auto taken = flow.take(queue, 100, seal_all);
    REQUIRE(taken.expired.size() == 1);
    CHECK(taken.expired.front().id == id_of(1));
    CHECK(taken.batches.size() == 1);
    CHECK_FALSE(taken.backing_off);

    queue.waiting_messages.push_back(message(3));
    queue.backing_off = true;
    auto later = flow.take(queue, 200, seal_all);
    CHECK(later.batches.empty());
    CHECK(later.backing_off);

    queue.fail_takes = true;
    auto failed = flow.take(queue, 300, seal_all);
    REQUIRE(failed.error);
    CHECK(failed.error->message == "cannot read");
}

TEST_CASE("broker outbound flow: a batch the seal keeps back is not sent and takes no room", "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    queue.waiting_messages.push_back(message(1, "held.channel"));
    queue.waiting_messages.push_back(message(2, "a.x"));
    auto request = message(3, "a.y");
    request.kind = Kind::request;
    queue.waiting_messages.push_back(request);
    std::vector<std::string> sealed;
    auto taken = flow.take(queue, 0, [&](std::vector<store::OutboundMessage> batch, const broker::BatchInFlight& f) {
        sealed.push_back(f.channel);
        if (f.channel == "held.channel") return std::optional<SignedBatch>{};
        return seal_all(std::move(batch), f);
    });
    CHECK(sealed == std::vector<std::string>{"held.channel", "a.x", "a.y"});
    REQUIRE(taken.batches.size() == 2);
    CHECK(taken.batches[1].flight.requests == std::vector<MessageId>{id_of(3)});
}

TEST_CASE("broker outbound flow: a session lost while sending releases what is in flight", "[broker][outbound]") {
    broker::OutboundFlow flow;
    FakeQueue queue;
    FakeSession session;
    one_per_channel(queue, {"a.x", "a.y"});
    auto taken = flow.take(queue, 0, seal_all);
    REQUIRE(taken.batches.size() == 2);
    session.lost = true;
    flow.send(std::move(taken.batches), session, queue);
    CHECK(queue.releases == 1);
    CHECK(flow.batches_in_flight() == 0);

    SECTION("clearing the window ignores the answers to what was sent before") {
        FakeSession other;
        queue.waiting_messages.push_back(message(3, "a.z"));
        flow.send(flow.take(queue, 0, seal_all).batches, other, queue);
        CHECK(flow.batches_in_flight() == 1);
        flow.clear_window();
        CHECK(flow.bytes_in_flight() == 0);
        CHECK_FALSE(flow.answered(1));
    }
}

TEST_CASE("broker outbound flow: clients wait for their message's ack once", "[broker][outbound]") {
    broker::OutboundFlow flow;
    flow.await_ack(id_of(1), broker::Waiter{{}, 11});
    flow.await_ack(id_of(2), broker::Waiter{{}, 12});
    auto first = flow.take_waiter(id_of(1));
    REQUIRE(first);
    CHECK(first->request_id == 11);
    CHECK_FALSE(flow.take_waiter(id_of(1)));
    CHECK(flow.awaited() == std::vector<MessageId>{id_of(2)});
    auto rest = flow.take_waiters();
    REQUIRE(rest.size() == 1);
    CHECK(rest.front().request_id == 12);
    CHECK(flow.awaited().empty());
}
