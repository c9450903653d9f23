// The gateway's state in Redis, through the GatewayState interface, against a real redis-server on
// loopback: the behaviours the SQLite store's tests check (gateway_store_test.cpp), and what only a
// shared store has: two gateways (two stores, each on its own event loop) seeing one state.
#include "store/redis/redis_gateway_store.h"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "redis_test_server.h"

namespace {

using aegis::Result;
using aegis::crypto::PublicKey;
using aegis::store::GatewayLimits;
using aegis::store::GatewayToken;
using aegis::store::StoredBatch;
using aegis::store::redis::RedisGatewayState;

PublicKey key_of(std::uint8_t seed) {
    PublicKey key{};
    key.fill(seed);
    return key;
}

aegis::Bytes text(const std::string& value) {
    const auto bytes = aegis::as_bytes(value);
    return {bytes.begin(), bytes.end()};
}

std::vector<std::string> payloads(const std::vector<StoredBatch>& batches) {
    std::vector<std::string> out;
    for (const auto& batch : batches) out.emplace_back(aegis::as_text(batch.batch));
    return out;
}

// One gateway's store on its own event loop: a completion is waited for by running that loop.
struct Gateway {
    boost::asio::io_context io;
    std::unique_ptr<RedisGatewayState> state;
    std::vector<std::string> warnings;
    std::vector<PublicKey> woken;
    std::vector<PublicKey> replaced;

    explicit Gateway(std::uint16_t port, GatewayLimits limits = {}) {
        auto opened = open(port, limits);
        INFO((opened ? std::string() : opened.error().message));
        REQUIRE(opened.ok());
        state = std::move(opened.value());
        state->watch({[this](const PublicKey& key) { woken.push_back(key); },
                      [this](const PublicKey& key) { replaced.push_back(key); }});
    }
    Result<std::unique_ptr<RedisGatewayState>> open(std::uint16_t port, GatewayLimits limits) {
        aegis::store::redis::RedisStoreOptions options;
        options.endpoint = {"127.0.0.1", port, 0};
        options.limits = limits;
        return RedisGatewayState::open(io, options, [this](std::string_view line) { warnings.emplace_back(line); });
    }

    template <class Predicate>
    void run_until(Predicate done) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!done()) {
            REQUIRE(std::chrono::steady_clock::now() < until);
            io.restart();
            io.run_for(std::chrono::milliseconds(5));
        }
    }
    // Lets whatever is under way (pub/sub hints) arrive.
    void settle() {
        io.restart();
        io.run_for(std::chrono::milliseconds(100));
    }
    template <class T, class Call>
    Result<T> answer(Call&& call) {
        std::optional<Result<T>> out;
        call([&](Result<T> result) { out.emplace(std::move(result)); });
        run_until([&] { return out.has_value(); });
        return std::move(*out);
    }

    void subscribe(const PublicKey& key, const std::string& id, std::vector<std::string> patterns) {
        REQUIRE(answer<void>([&](auto done) { state->save_subscriptions(key, id, patterns, done); }).ok());
    }
    // Routed and committed in one turn, as the group commit does.
    Result<aegis::store::CommitOutcome> commit(aegis::store::StateCommit commit) {
        commit.route = [this](const aegis::store::InboxAppend& append) {
            std::vector<PublicKey> out;
            for (const auto& subscriber : state->subscribers(append.channel))
                if (subscriber.key != append.origin) out.push_back(subscriber.key);
            return out;
        };
        return answer<aegis::store::CommitOutcome>([&](auto done) { state->commit(std::move(commit), done); });
    }
    std::uint64_t append(const PublicKey& key, const std::string& body, std::uint64_t messages = 1,
                         std::uint64_t now_ms = 1000) {
        aegis::store::StateCommit one;
        one.appends.push_back({"agent.host42.logs", text(body), messages, {key}, key_of(200)});
        one.now_ms = now_ms;
        auto committed = commit(std::move(one));
        INFO((committed ? std::string() : committed.error().message));
        REQUIRE(committed.ok());
        std::uint64_t dropped = 0;
        for (const auto& [id, count] : committed->dropped_full) dropped += count;
        return dropped;
    }
    void acknowledge(const PublicKey& key, std::uint64_t sequence) {
        aegis::store::StateCommit acks;
        acks.acknowledgements[key] = sequence;
        REQUIRE(commit(std::move(acks)).ok());
    }
    std::vector<StoredBatch> read(const PublicKey& key, std::uint64_t after, std::size_t limit = 10) {
        auto read = answer<std::vector<StoredBatch>>([&](auto done) { state->read_after(key, after, limit, done); });
        REQUIRE(read.ok());
        return std::move(read.value());
    }
    aegis::store::OpenedSession open_session(const PublicKey& key, const std::string& id, const GatewayToken& presented,
                                             std::uint64_t now_ms) {
        auto opened = answer<aegis::store::OpenedSession>(
            [&](auto done) { state->open_session(key, id, presented, now_ms, done); });
        REQUIRE(opened.ok());
        return std::move(opened.value());
    }
    std::map<std::string, std::uint64_t> expire(std::uint64_t now_ms) {
        auto expired = answer<std::map<std::string, std::uint64_t>>([&](auto done) { state->expire(now_ms, done); });
        REQUIRE(expired.ok());
        settle();  // the summary read after it
        return std::move(expired.value());
    }
    std::uint64_t pending(const PublicKey& key) {
        expire(1);  // nothing expires; refreshes the summary
        const auto all = state->identities();
        const auto found = all.find(key);
        return found == all.end() ? 0 : found->second.pending;
    }
};

}  // namespace

TEST_CASE("redis store: inbox sequences increase, acknowledgement trims, another gateway reads the same", "[redis]") {
    aegis::test::RedisTestServer server;
    const auto soc = key_of(1);
    const auto host = key_of(2);
    Gateway one(server.port());
    one.subscribe(soc, "soc", {"agent.>", "backend.all.>"});
    one.subscribe(host, "host42", {"backend.host42.>"});
    for (const auto* body : {"one", "two", "three"}) CHECK(one.append(soc, body) == 0);
    one.append(host, "deny", 2);
    CHECK(one.pending(soc) == 3);
    CHECK(one.pending(host) == 2);
    CHECK(one.state->totals().messages == 5);
    CHECK(one.state->totals().identities == 2);

    const auto all = one.read(soc, 0);
    REQUIRE(all.size() == 3);
    CHECK(payloads(all) == std::vector<std::string>{"one", "two", "three"});
    CHECK(all.at(0).sequence < all.at(1).sequence);  // increasing, gaps allowed
    CHECK(all.at(1).sequence < all.at(2).sequence);
    CHECK(all.at(1).channel == "agent.host42.logs");
    CHECK(all.at(1).messages == 1);
    CHECK(all.at(1).stored_ms == 1000);
    CHECK(payloads(one.read(soc, all.at(0).sequence)) == std::vector<std::string>{"two", "three"});
    CHECK(one.read(soc, all.at(1).sequence, 1).size() == 1);

    one.acknowledge(soc, all.at(1).sequence);
    CHECK(one.pending(soc) == 1);
    CHECK(payloads(one.read(soc, 0)) == std::vector<std::string>{"three"});
    one.acknowledge(soc, all.at(0).sequence);  // never goes back
    CHECK(one.pending(soc) == 1);
    one.acknowledge(soc, all.at(2).sequence + 1'000'000);  // clamped to what was handed out
    CHECK(one.pending(soc) == 0);
    CHECK(one.read(soc, 0).empty());
    one.append(soc, "four");
    const auto four = one.read(soc, all.at(2).sequence);
    REQUIRE(four.size() == 1);
    CHECK(four.at(0).sequence > all.at(2).sequence);

    // A second gateway (or this one restarted) finds everything where it was.
    Gateway two(server.port());
    CHECK(payloads(two.read(soc, 0)) == std::vector<std::string>{"four"});
    CHECK(two.pending(host) == 2);
    const auto opened = two.open_session(soc, "soc", GatewayToken{}, 2'000);
    CHECK(opened.acknowledged == all.at(2).sequence);
    CHECK(opened.patterns == std::vector<std::string>{"agent.>", "backend.all.>"});
}

TEST_CASE("redis store: subscribers of a channel are the identities with a matching stored pattern", "[redis]") {
    aegis::test::RedisTestServer server;
    Gateway gateway(server.port());
    gateway.subscribe(key_of(1), "soc", {"agent.>", "backend.all.>"});
    gateway.subscribe(key_of(2), "host42", {"backend.host42.>"});
    gateway.subscribe(key_of(3), "audit", {"agent.*.logs", "agent.host42.*"});
    const auto found = gateway.state->subscribers("agent.host42.logs");
    REQUIRE(found.size() == 2);
    for (const auto& subscriber : found) {
        if (subscriber.key == key_of(1)) {
            CHECK(subscriber.id == "soc");
            CHECK(subscriber.patterns == std::vector<std::string>{"agent.>"});
        } else {
            CHECK(subscriber.key == key_of(3));
            CHECK(subscriber.patterns == std::vector<std::string>{"agent.*.logs", "agent.host42.*"});
        }
    }
    CHECK(gateway.state->subscribers("backend.other.policies").empty());
    gateway.subscribe(key_of(3), "audit", {});  // an empty set routes nothing
    CHECK(gateway.state->subscribers("agent.host42.logs").size() == 1);
    // A gateway started later reads the sets as they are.
    Gateway later(server.port());
    CHECK(later.state->subscribers("agent.host42.logs").size() == 1);
    CHECK(later.state->subscribers("backend.host42.x").at(0).id == "host42");
}

TEST_CASE("redis store: a subscription saved through one gateway is routed by another's next commit", "[redis]") {
    aegis::test::RedisTestServer server;
    Gateway publisher_side(server.port());
    Gateway subscriber_side(server.port());
    const auto soc = key_of(1);
    // The publisher's gateway does not run its loop meanwhile: no hint can reach it.
    subscriber_side.subscribe(soc, "soc", {"agent.>"});
    CHECK(publisher_side.state->subscribers("agent.host42.logs").empty());  // its view lags
    const auto before = publisher_side.state->routing_version();
    // Routed against the lagging view (nobody), refused by Redis as stale, routed again.
    aegis::store::StateCommit commit;
    commit.appends.push_back({"agent.host42.logs", text("at once"), 1, {}, key_of(2)});
    REQUIRE(publisher_side.commit(std::move(commit)).ok());
    CHECK(publisher_side.state->routing_version() > before);
    CHECK(payloads(subscriber_side.read(soc, 0)) == std::vector<std::string>{"at once"});
}

TEST_CASE("redis store: sessions resume with their token on any gateway, one live session per identity", "[redis]") {
    aegis::test::RedisTestServer server;
    GatewayLimits limits;
    limits.max_age_ms = 1000;
    Gateway a(server.port(), limits);
    Gateway b(server.port(), limits);
    const auto soc = key_of(1);
    const auto host = key_of(2);
    const auto first = a.open_session(soc, "soc", GatewayToken{}, 20'000);
    CHECK_FALSE(first.resumed);
    CHECK(first.token != GatewayToken{});
    // The broker comes back through the other gateway with its token: resumed there.
    const auto second = b.open_session(soc, "soc", first.token, 20'500);
    CHECK(second.resumed);
    CHECK(second.token == first.token);
    // The older gateway is told and closes its session.
    a.run_until([&] { return !a.replaced.empty(); });
    CHECK(a.replaced == std::vector<PublicKey>{soc});
    CHECK(b.replaced.empty());
    // And back again: now b is told.
    a.open_session(soc, "soc", first.token, 20'600);
    b.run_until([&] { return !b.replaced.empty(); });
    // A batch stored through b wakes the gateway holding the session (a).
    a.subscribe(soc, "soc", {"agent.>"});
    b.settle();
    b.append(soc, "wake up");
    a.run_until([&] { return !a.woken.empty(); });
    CHECK(a.woken.back() == soc);

    CHECK_FALSE(b.open_session(host, "host42", first.token, 20'700).resumed);  // another identity's
    CHECK_FALSE(a.open_session(soc, "soc", first.token, 21'601).resumed);      // expired: a new token
    CHECK_FALSE(a.open_session(soc, "soc", first.token, 21'700).resumed);      // no longer this identity's
    CHECK_FALSE(a.open_session(soc, "soc", GatewayToken{}, 21'800).resumed);   // none presented
    // A closed session's token counts its age from the close.
    const auto token = a.open_session(host, "host42", GatewayToken{}, 30'000).token;
    a.state->session_closed(host, "host42", token, 35'000);
    CHECK(b.open_session(host, "host42", token, 35'900).resumed);
}

TEST_CASE("redis store: bounded per identity, oldest dropped first and counted", "[redis]") {
    aegis::test::RedisTestServer server;
    GatewayLimits limits;
    limits.max_messages = 3;
    Gateway gateway(server.port(), limits);
    const auto soc = key_of(1);
    gateway.subscribe(soc, "soc", {"agent.>"});
    std::uint64_t dropped = 0;
    for (const auto* body : {"a", "b", "c", "d", "e"}) dropped += gateway.append(soc, body);
    CHECK(dropped == 2);
    CHECK(gateway.pending(soc) == 3);
    CHECK(payloads(gateway.read(soc, 0)) == std::vector<std::string>{"c", "d", "e"});
    CHECK(gateway.append(soc, "batch of two", 2) == 2);  // a batch counts its messages
    CHECK(gateway.pending(soc) == 3);
    CHECK(payloads(gateway.read(soc, 0)) == std::vector<std::string>{"e", "batch of two"});
}

TEST_CASE("redis store: entries expire after max_age", "[redis]") {
    aegis::test::RedisTestServer server;
    GatewayLimits limits;
    limits.max_age_ms = 1000;
    Gateway gateway(server.port(), limits);
    const auto soc = key_of(1);
    const auto host = key_of(2);
    gateway.subscribe(soc, "soc", {"agent.>"});
    gateway.subscribe(host, "host42", {"backend.host42.>"});
    gateway.append(soc, "old", 1, 10'000);
    gateway.append(host, "old too", 3, 10'000);
    gateway.append(soc, "new", 1, 10'900);
    CHECK(gateway.expire(10'500).empty());
    const auto expired = gateway.expire(11'500);
    CHECK(expired.at("soc") == 1);
    CHECK(expired.at("host42") == 3);
    CHECK(payloads(gateway.read(soc, 0)) == std::vector<std::string>{"new"});
    CHECK(gateway.read(host, 0).empty());
    CHECK(gateway.state->totals().messages == 1);
    CHECK(gateway.expire(12'000).at("soc") == 1);
    CHECK(gateway.state->totals().messages == 0);
}

TEST_CASE("redis store: a server that may evict inboxes is refused, one without fsync is warned of", "[redis]") {
    SECTION("maxmemory-policy allkeys-lru") {
        aegis::test::RedisTestServer server({"--maxmemory-policy", "allkeys-lru"});
        boost::asio::io_context io;
        aegis::store::redis::RedisStoreOptions options;
        options.endpoint = {"127.0.0.1", server.port(), 0};
        auto opened = RedisGatewayState::open(io, options, [](std::string_view) {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::bad_input);
        CHECK(opened.error().message.find("maxmemory-policy allkeys-lru") != std::string::npos);
    }
    SECTION("appendfsync everysec") {
        aegis::test::RedisTestServer server({"--appendfsync", "everysec"});
        Gateway gateway(server.port());
        REQUIRE(gateway.warnings.size() == 1);
        CHECK(gateway.warnings.at(0).find("appendfsync everysec") != std::string::npos);
    }
    SECTION("nobody listening") {
        const auto port = aegis::test::free_loopback_port();
        boost::asio::io_context io;
        aegis::store::redis::RedisStoreOptions options;
        options.endpoint = {"127.0.0.1", port, 0};
        options.command_timeout = std::chrono::milliseconds(300);
        auto opened = RedisGatewayState::open(io, options, [](std::string_view) {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::failure);
        CHECK(opened.error().message.find("cannot reach Redis") != std::string::npos);
    }
}
