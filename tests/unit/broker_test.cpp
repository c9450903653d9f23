// The broker's pure parts: the local subscription set, known_backends.
// (The outbound queue's order and batching are tested on the SQLite queue, in store tests.)

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "broker/known_backends.h"
#include "broker/local_subscriptions.h"

namespace broker = aegis::broker;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char pattern[] = "/tmp/aegis-broker-test-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

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
