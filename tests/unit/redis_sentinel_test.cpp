// Reading what Redis Sentinel says: the sentinel list of --redis-sentinel, the answer to
// SENTINEL get-master-addr-by-name, +switch-master messages (another master's ignored) and ROLE.
// Pure code: the failover itself is tests/cli/cluster_test.sh, part sentinel.
#include <catch2/catch.hpp>
#include <string>

#include "store/redis/sentinel.h"

namespace {

using aegis::store::redis::Endpoint;
using aegis::store::redis::Reply;

Reply text(std::string value, Reply::Type type = Reply::Type::string) {
    Reply reply;
    reply.type = type;
    reply.text = std::move(value);
    return reply;
}

Reply array(std::vector<Reply> elements) {
    Reply reply;
    reply.type = Reply::Type::array;
    reply.elements = std::move(elements);
    return reply;
}

}  // namespace

TEST_CASE("redis sentinel: the list of sentinels", "[sentinel]") {
    using aegis::store::redis::parse_sentinels;
    auto three = parse_sentinels("10.0.0.1:26379,sentinel.example:26380,[::1]:26381");
    REQUIRE(three.ok());
    REQUIRE(three->size() == 3);
    CHECK((*three)[0] == Endpoint{"10.0.0.1", 26379, 0});
    CHECK((*three)[1] == Endpoint{"sentinel.example", 26380, 0});
    CHECK((*three)[2] == Endpoint{"::1", 26381, 0});
    for (const auto* bad : {"", "h", "h:", "h:0", "h:1,", ",h:1", "h:1/2", "[::1]", "redis://h:1", "h:1,,h:2"}) {
        INFO(bad);
        auto parsed = parse_sentinels(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().exit == aegis::ExitCode::usage);
        CHECK(parsed.error().message.find("--redis-sentinel wants HOST:PORT") != std::string::npos);
    }
}

TEST_CASE("redis sentinel: the answer to get-master-addr-by-name", "[sentinel]") {
    using aegis::store::redis::parse_master_address;
    auto found = parse_master_address(array({text("127.0.0.1"), text("6380")}));
    REQUIRE(found.ok());
    CHECK(*found == Endpoint{"127.0.0.1", 6380, 0});
    // Nil: the sentinel monitors no master of that name.
    auto unknown = parse_master_address(Reply{});
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().message.find("no master of that name") != std::string::npos);
    CHECK_FALSE(parse_master_address(array({text("127.0.0.1")})).ok());
    CHECK_FALSE(parse_master_address(array({text("127.0.0.1"), text("port")})).ok());
    CHECK_FALSE(parse_master_address(array({text("127.0.0.1"), text("0")})).ok());
    CHECK_FALSE(parse_master_address(text("OK", Reply::Type::status)).ok());
}

TEST_CASE("redis sentinel: +switch-master for this master only", "[sentinel]") {
    using aegis::store::redis::parse_switch_master;
    auto moved = parse_switch_master("aegis 127.0.0.1 6379 127.0.0.1 6380", "aegis");
    REQUIRE(moved.has_value());
    CHECK(*moved == Endpoint{"127.0.0.1", 6380, 0});
    // Another master's switch, a name that only starts alike, and what does not parse: ignored.
    CHECK_FALSE(parse_switch_master("other 127.0.0.1 6379 127.0.0.1 6380", "aegis").has_value());
    CHECK_FALSE(parse_switch_master("aegis2 127.0.0.1 6379 127.0.0.1 6380", "aegis").has_value());
    CHECK_FALSE(parse_switch_master("aegis 127.0.0.1 6379 127.0.0.1", "aegis").has_value());
    CHECK_FALSE(parse_switch_master("aegis 127.0.0.1 6379 127.0.0.1 x", "aegis").has_value());
    CHECK_FALSE(parse_switch_master("", "aegis").has_value());
}

TEST_CASE("redis sentinel: ROLE says master, or the node is not used", "[sentinel]") {
    using aegis::store::redis::check_master_role;
    CHECK(check_master_role(array({text("master"), Reply{}, array({})})).ok());
    auto replica = check_master_role(array({text("slave"), text("127.0.0.1"), text("6379")}));
    REQUIRE_FALSE(replica.ok());
    CHECK(replica.error().message == "the server is a slave, not the master");
    CHECK_FALSE(check_master_role(array({text("sentinel")})).ok());
    CHECK_FALSE(check_master_role(aegis::Result<Reply>(aegis::make_error(aegis::ExitCode::failure, "closed"))).ok());
}
