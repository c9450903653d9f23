// The broker's pure parts: outbound queue order and batching, the dedup window, the local
// subscription set, known_backends.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "broker/dedup_window.h"
#include "broker/known_backends.h"
#include "broker/local_subscriptions.h"
#include "broker/outbound_queue.h"

namespace broker = aegis::broker;
using aegis::protocol::MessageId;
using aegis::protocol::Priority;

namespace {

[[nodiscard]] MessageId id_of(std::uint8_t n) {
    MessageId id{};
    id[0] = n;
    id[15] = n;
    return id;
}

[[nodiscard]] broker::OutboundMessage message(std::uint8_t n, std::string channel, Priority priority = Priority::normal,
                                              std::size_t payload = 1, std::uint64_t expires_ms = 0) {
    broker::OutboundMessage out;
    out.id = id_of(n);
    out.channel = std::move(channel);
    out.priority = priority;
    out.payload.assign(payload, n);
    out.expires_ms = expires_ms;
    return out;
}

[[nodiscard]] std::vector<std::uint8_t> numbers(const std::vector<broker::OutboundMessage>& batch) {
    std::vector<std::uint8_t> out;
    for (const auto& m : batch) out.push_back(m.id[0]);
    return out;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char pattern[] = "/tmp/aegis-broker-test-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("broker: the queue sends critical first, then in arrival order", "[broker]") {
    auto queue = broker::make_memory_queue();
    REQUIRE(queue->push(message(1, "a.x", Priority::low)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal)));
    REQUIRE(queue->push(message(3, "a.x", Priority::critical)));
    REQUIRE(queue->push(message(4, "a.x", Priority::normal)));
    std::vector<broker::OutboundMessage> expired;
    broker::BatchLimits one{1, 1 << 20};
    std::vector<std::uint8_t> order;
    for (;;) {
        auto batch = queue->take_batch(one, 0, expired);
        if (batch.empty()) break;
        order.push_back(batch.front().id[0]);
    }
    CHECK(order == std::vector<std::uint8_t>{3, 2, 4, 1});
    CHECK(queue->waiting() == 0);
    CHECK(queue->in_flight() == 4);
    CHECK(expired.empty());
}

TEST_CASE("broker: a batch is consecutive messages of one channel and priority, within its limits", "[broker]") {
    auto queue = broker::make_memory_queue();
    for (std::uint8_t n = 1; n <= 5; ++n) REQUIRE(queue->push(message(n, "a.x")));
    REQUIRE(queue->push(message(6, "a.y")));
    REQUIRE(queue->push(message(7, "a.x")));
    std::vector<broker::OutboundMessage> expired;
    CHECK(numbers(queue->take_batch({3, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{1, 2, 3});
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{4, 5});
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{6});
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{7});

    auto by_bytes = broker::make_memory_queue();
    REQUIRE(by_bytes->push(message(1, "a.x", Priority::normal, 600)));
    REQUIRE(by_bytes->push(message(2, "a.x", Priority::normal, 600)));
    REQUIRE(by_bytes->push(message(3, "a.x", Priority::normal, 5000)));
    CHECK(numbers(by_bytes->take_batch({256, 1000}, 0, expired)) == std::vector<std::uint8_t>{1});
    CHECK(numbers(by_bytes->take_batch({256, 1000}, 0, expired)) == std::vector<std::uint8_t>{2});
    CHECK(numbers(by_bytes->take_batch({256, 1000}, 0, expired)) ==
          std::vector<std::uint8_t>{3});  // alone, over the limit
}

TEST_CASE("broker: released messages go back to their place; acknowledged and dropped ones are gone", "[broker]") {
    auto queue = broker::make_memory_queue();
    for (std::uint8_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n, "a.x")));
    std::vector<broker::OutboundMessage> expired;
    const auto first = queue->take_batch({2, 1 << 20}, 0, expired);
    const auto second = queue->take_batch({2, 1 << 20}, 0, expired);
    queue->acknowledge({first[0].id});
    queue->drop({first[1].id});
    CHECK(queue->in_flight() == 2);
    queue->release_all();
    CHECK(queue->in_flight() == 0);
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{3, 4});
    queue->release({id_of(4)});
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 0, expired)) == std::vector<std::uint8_t>{4});
    CHECK(queue->waiting() == 0);
}

TEST_CASE("broker: expired messages are removed and reported, never sent", "[broker]") {
    auto queue = broker::make_memory_queue();
    REQUIRE(queue->push(message(1, "a.x", Priority::normal, 1, 1000)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal, 1, 0)));
    REQUIRE(queue->push(message(3, "a.x", Priority::normal, 1, 5000)));
    std::vector<broker::OutboundMessage> expired;
    CHECK(numbers(queue->take_batch({256, 1 << 20}, 2000, expired)) == std::vector<std::uint8_t>{2, 3});
    CHECK(numbers(expired) == std::vector<std::uint8_t>{1});
}

TEST_CASE("broker: a full queue refuses more", "[broker]") {
    auto queue = broker::make_memory_queue(2);
    REQUIRE(queue->push(message(1, "a.x")));
    REQUIRE(queue->push(message(2, "a.x")));
    CHECK_FALSE(queue->push(message(3, "a.x")));
}

TEST_CASE("broker: the dedup window passes each id once and forgets the oldest", "[broker]") {
    broker::DedupWindow window(3);
    CHECK(window.first_sight(id_of(1)));
    CHECK_FALSE(window.first_sight(id_of(1)));
    CHECK(window.first_sight(id_of(2)));
    CHECK(window.first_sight(id_of(3)));
    CHECK(window.first_sight(id_of(4)));  // 1 falls out
    CHECK(window.size() == 3);
    CHECK(window.first_sight(id_of(1)));
    CHECK_FALSE(window.first_sight(id_of(4)));
}

TEST_CASE("broker: the gateway set is the minimal union of local patterns", "[broker]") {
    broker::LocalSubscriptions subscriptions;
    subscriptions.add(1, {"backend.host42.policies", "backend.all.>"});
    subscriptions.add(2, {"backend.host42.>"});
    subscriptions.add(3, {"backend.host42.policies"});
    CHECK(subscriptions.gateway_set() == std::vector<std::string>{"backend.all.>", "backend.host42.>"});
    CHECK(subscriptions.gateway_set({"backend.*.tests"}) ==
          std::vector<std::string>{"backend.*.tests", "backend.all.>", "backend.host42.>"});
    subscriptions.remove(2);
    CHECK(subscriptions.gateway_set() == std::vector<std::string>{"backend.all.>", "backend.host42.policies"});
    CHECK(broker::minimal_pattern_set({"a.>", "a.b", "a.*", "a.b", "c"}) == std::vector<std::string>{"a.>", "c"});
}

TEST_CASE("broker: a delivered channel goes to each matching subscriber once", "[broker]") {
    broker::LocalSubscriptions subscriptions;
    subscriptions.add(1, {"agent.*.anomalies", "agent.host42.>"});
    subscriptions.add(2, {"agent.other.>"});
    subscriptions.add(3, {"agent.>"});
    CHECK(subscriptions.subscribers_for("agent.host42.anomalies") == std::vector<broker::SubscriberId>{1, 3});
    CHECK(subscriptions.subscribers_for("agent.other.logs") == std::vector<broker::SubscriberId>{2, 3});
    CHECK(subscriptions.subscribers_for("backend.host42.policies").empty());
    CHECK(subscriptions.contains(2));
    subscriptions.remove(2);
    CHECK_FALSE(subscriptions.contains(2));
}

TEST_CASE("broker: known_backends pins a recorded URL and ignores others", "[broker]") {
    TempDir dir;
    const auto file = dir.path / "known_backends";
    auto missing = broker::find_known_backends(file, "ws://127.0.0.1:1/");
    REQUIRE(missing);
    CHECK(missing->empty());

    aegis::crypto::PublicKey key{};
    key.fill(9);
    REQUIRE(broker::record_known_backend(file, "ws://127.0.0.1:1/", key));
    CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    auto found = broker::find_known_backends(file, "ws://127.0.0.1:1/");
    REQUIRE(found);
    REQUIRE(found->size() == 1);
    CHECK(found->at(0) == key);
    auto other = broker::find_known_backends(file, "ws://127.0.0.1:2/");
    REQUIRE(other);
    CHECK(other->empty());

    // A second line for the same URL (a gateway key rollover): both keys are pinned.
    aegis::crypto::PublicKey next{};
    next.fill(10);
    REQUIRE(broker::record_known_backend(file, "ws://127.0.0.1:1/", next));
    auto both = broker::find_known_backends(file, "ws://127.0.0.1:1/");
    REQUIRE(both);
    CHECK(*both == std::vector<aegis::crypto::PublicKey>{key, next});

    std::ofstream(file, std::ios::app) << "ws://bad.example:1/ not-a-key\n";
    CHECK_FALSE(broker::find_known_backends(file, "ws://bad.example:1/"));
}

TEST_CASE("broker: URLs are recorded in one canonical form", "[broker]") {
    aegis::net::Url url;
    url.host = "127.0.0.1";
    url.port = "8443";
    url.target = "/";
    CHECK(broker::canonical_url(url) == "ws://127.0.0.1:8443/");
    url.tls = true;
    url.host = "::1";
    url.target = "/aegis";
    CHECK(broker::canonical_url(url) == "wss://[::1]:8443/aegis");
}
