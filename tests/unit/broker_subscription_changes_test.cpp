// The broker's subscription changes (broker/subscription_changes.h) against a fake session and
// fake local subscribers: one change in flight at a time, what the confirmed set already covers,
// refusals, a reconnect, and subscribers that leave.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "broker/subscription_changes.h"
#include "fake_peer.h"

namespace broker = aegis::broker;
using aegis::Error;
using aegis::ExitCode;
using aegis::Result;
using aegis::test::FakePeer;
using Patterns = std::vector<std::string>;

namespace {

class FakeSession final : public broker::SubscriptionSession {
public:
    std::uint32_t set_subscriptions(const Patterns& set) override {
        sets.push_back(set);
        return next_request_id++;
    }
    std::vector<Patterns> sets;  // every set given, in order
    std::uint32_t next_request_id = 1;
};

class FakeSubscribers final : public broker::Subscribers {
public:
    [[nodiscard]] Patterns durable_patterns() const override { return durable; }
    void subscribed(const broker::PendingSubscribe& pending) override { answered.push_back(pending.peer_id); }
    void denied(const broker::PendingSubscribe& pending, const aegis::ipc::WireError& error) override {
        denials.emplace_back(pending.peer_id, error.reason);
    }
    void refused(const broker::PendingSubscribe& pending, const aegis::ipc::WireError& error) override {
        refusals.emplace_back(pending.peer_id, error.message);
    }
    Patterns durable;
    std::vector<std::uint64_t> answered;  // peer ids, in order
    std::vector<std::pair<std::uint64_t, std::string>> denials;
    std::vector<std::pair<std::uint64_t, std::string>> refusals;
};

struct Fixture {
    broker::SubscriptionChanges changes;
    FakeSession session;
    FakeSubscribers subscribers;
    std::vector<std::shared_ptr<FakePeer>> peers;

    // A subscribe request of a new client (peer id 1, 2, ...); `durable` names a cursor.
    broker::PendingSubscribe subscriber(Patterns patterns, std::string durable = {}) {
        peers.push_back(std::make_shared<FakePeer>(peers.size() + 1));
        broker::PendingSubscribe pending;
        pending.waiter.peer = peers.back();
        pending.waiter.request_id = peers.size();
        pending.peer_id = peers.back()->id();
        pending.patterns = std::move(patterns);
        pending.durable = std::move(durable);
        return pending;
    }
    void subscribe(Patterns patterns, std::string durable = {}) {
        changes.request(subscriber(std::move(patterns), std::move(durable)));
        advance();
    }
    void advance(const aegis::channel::AccessPolicy* policy = nullptr) {
        changes.advance(policy, session, subscribers);
    }
    // The gateway answers the last set given; then what waits goes on.
    std::optional<Patterns> answer(Result<void> outcome = {}) {
        auto refused = changes.answered(session.next_request_id - 1, outcome, subscribers);
        advance();
        return refused;
    }
};

}  // namespace

TEST_CASE("broker subscription changes: one set in flight, each answer for its own subscriber",
          "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});
    f.subscribe({"backend.all.>"});
    REQUIRE(f.session.sets == std::vector<Patterns>{{"backend.a1.>"}});  // the second waits its turn
    CHECK(f.changes.in_flight());
    CHECK(f.subscribers.answered.empty());

    CHECK_FALSE(f.answer());
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1});
    CHECK(f.changes.confirmed_set() == Patterns{"backend.a1.>"});
    REQUIRE(f.session.sets.size() == 2);
    CHECK(f.session.sets[1] == Patterns{"backend.a1.>", "backend.all.>"});

    CHECK_FALSE(f.answer());
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1, 2});
    CHECK(f.changes.confirmed_set() == Patterns{"backend.a1.>", "backend.all.>"});
    CHECK(f.changes.confirmed().subscribers_for("backend.all.x") == std::vector<broker::SubscriberId>{2});
    CHECK_FALSE(f.changes.in_flight());
}

TEST_CASE("broker subscription changes: patterns the confirmed set covers need no round trip",
          "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});
    (void)f.answer();
    f.subscribe({"backend.a1.logs"});  // covered by backend.a1.>
    CHECK(f.session.sets.size() == 1);
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1, 2});
    CHECK(f.changes.confirmed().subscribers_for("backend.a1.logs").size() == 2);
}

TEST_CASE("broker subscription changes: a refused set is answered with the error, then the accepted set is restored",
          "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});
    (void)f.answer();
    f.subscribe({"backend.zz.>"});
    const auto refused = f.answer(Error{ExitCode::refused, "access denied", 0});
    REQUIRE(refused);
    CHECK(*refused == Patterns{"backend.a1.>", "backend.zz.>"});
    REQUIRE(f.subscribers.refusals.size() == 1);
    CHECK(f.subscribers.refusals[0] == std::pair<std::uint64_t, std::string>{2, "access denied"});
    CHECK(f.changes.confirmed_set() == Patterns{"backend.a1.>"});
    // The session was given the refused set: it gets the accepted one back.
    REQUIRE(f.session.sets.size() == 3);
    CHECK(f.session.sets[2] == Patterns{"backend.a1.>"});
    CHECK_FALSE(f.changes.confirmed().contains(2));
}

TEST_CASE("broker subscription changes: after a reconnect the change in flight goes again, old answers are ignored",
          "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});
    const auto first_id = f.session.next_request_id - 1;
    f.changes.resend(f.session);
    REQUIRE(f.session.sets.size() == 2);
    CHECK(f.session.sets[1] == Patterns{"backend.a1.>"});
    // The answer to the first session's request is not this change's.
    CHECK_FALSE(f.changes.answered(first_id, {}, f.subscribers));
    CHECK(f.changes.in_flight());
    CHECK(f.subscribers.answered.empty());
    (void)f.answer();
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1});
    // Nothing in flight: nothing to send again.
    f.changes.resend(f.session);
    CHECK(f.session.sets.size() == 2);
}

TEST_CASE("broker subscription changes: subscribers that leave narrow the set", "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});
    (void)f.answer();
    f.subscribe({"backend.all.>"});
    f.peers[1]->open = false;  // it leaves before the gateway answers
    (void)f.answer();
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1});
    REQUIRE(f.session.sets.size() == 3);
    CHECK(f.session.sets[2] == Patterns{"backend.a1.>"});
    (void)f.answer();

    // A client that leaves before its turn is not sent at all.
    f.subscribe({"backend.a1.x"});
    f.changes.request(f.subscriber({"backend.b2.>"}));
    f.peers.back()->open = false;
    f.advance();
    CHECK(f.session.sets.size() == 3);

    // A confirmed subscriber that leaves: the set narrows to what is left.
    CHECK_FALSE(f.changes.forget(99));
    CHECK(f.changes.forget(1));
    f.advance();
    REQUIRE(f.session.sets.size() == 4);
    CHECK(f.session.sets[3] == Patterns{"backend.a1.x"});
}

TEST_CASE("broker subscription changes: the policy of the session is checked when a subscriber's turn comes",
          "[broker][subscriptions]") {
    Fixture f;
    const aegis::channel::AccessPolicy policy(aegis::Role::agent, "a1");
    f.changes.request(f.subscriber({"backend.b2.>"}));
    f.changes.request(f.subscriber({"backend.a1.>"}));
    f.advance(&policy);
    REQUIRE(f.subscribers.denials.size() == 1);
    CHECK(f.subscribers.denials[0].first == 1);
    CHECK(f.subscribers.denials[0].second == "access_denied");
    CHECK(f.session.sets == std::vector<Patterns>{{"backend.a1.>"}});
    CHECK(broker::refused_pattern(policy, {"backend.all.x", "agent.a1.y"}) == std::optional<std::string>("agent.a1.y"));
}

TEST_CASE("broker subscription changes: durable cursors' patterns stay in the set", "[broker][subscriptions]") {
    Fixture f;
    f.subscribers.durable = {"backend.all.>"};
    f.subscribe({"backend.all.>"}, "nightly");
    REQUIRE(f.session.sets == std::vector<Patterns>{{"backend.all.>"}});
    (void)f.answer();
    CHECK(f.subscribers.answered == std::vector<std::uint64_t>{1});
    CHECK_FALSE(f.changes.confirmed().contains(1));  // a cursor, not a live subscriber

    f.subscribe({"backend.a1.>"});
    (void)f.answer();
    CHECK(f.changes.confirmed_set() == Patterns{"backend.a1.>", "backend.all.>"});

    // A cursor deleted: the set narrows on the next advance.
    f.subscribers.durable.clear();
    f.changes.cursors_changed();
    f.advance();
    CHECK(f.session.sets.back() == Patterns{"backend.a1.>"});
}

TEST_CASE("broker subscription changes: waiting subscribers are handed back, all or the live ones",
          "[broker][subscriptions]") {
    Fixture f;
    f.subscribe({"backend.a1.>"});  // in flight
    f.changes.request(f.subscriber({"backend.all.>"}));
    f.changes.request(f.subscriber({"backend.all.>"}, "nightly"));
    const auto live = f.changes.take_waiting_live();
    REQUIRE(live.size() == 1);
    CHECK(live[0].peer_id == 2);
    const auto rest = f.changes.take_waiting();
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].durable == "nightly");
    CHECK(f.changes.take_waiting().empty());
}
