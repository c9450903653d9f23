// The Redis connection on an Asio event loop against a real redis-server on loopback: replies
// matched in order while many commands are in flight, a deadline that fires against a stopped
// server, reconnecting after a crash and restart, pub/sub messages, and a move to another address
// while a connect hangs.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "redis_test_server.h"
#include "store/redis/connection.h"

namespace {

using aegis::Result;
using aegis::store::redis::Connection;
using aegis::store::redis::ConnectionOptions;
using aegis::store::redis::Endpoint;
using aegis::store::redis::Reply;

Endpoint local(std::uint16_t port) {
    return Endpoint{"127.0.0.1", port, 0};
}

// Runs the loop until `done` holds, failing the test past `limit`.
template <class Predicate>
void run_until(boost::asio::io_context& io, Predicate done,
               std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        REQUIRE(std::chrono::steady_clock::now() < until);
        io.restart();
        io.run_for(std::chrono::milliseconds(10));
    }
}

Result<Reply> call(boost::asio::io_context& io, Connection& connection, aegis::store::redis::Command command) {
    std::optional<Result<Reply>> answer;
    connection.command(std::move(command), [&](Result<Reply> reply) { answer.emplace(std::move(reply)); });
    run_until(io, [&] { return answer.has_value(); });
    return std::move(*answer);
}

}  // namespace

TEST_CASE("redis connection: URLs", "[redis]") {
    using aegis::store::redis::parse_url;
    auto plain = parse_url("redis://10.0.0.5:6380/2");
    REQUIRE(plain.ok());
    CHECK(plain->host == "10.0.0.5");
    CHECK(plain->port == 6380);
    CHECK(plain->database == 2);
    auto defaults = parse_url("redis://cache.example");
    REQUIRE(defaults.ok());
    CHECK(defaults->port == 6379);
    CHECK(defaults->database == 0);
    auto v6 = parse_url("redis://[::1]:7000");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(aegis::store::redis::to_string(*v6) == "redis://[::1]:7000/0");
    for (const auto* bad : {"http://x:1", "redis://", "redis://h:0", "redis://h:port", "redis://h:1/x",
                            "redis://user:pw@h:1", "redis://[::1"}) {
        INFO(bad);
        auto parsed = parse_url(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().exit == aegis::ExitCode::usage);
    }
}

TEST_CASE("redis connection: pipelined commands are answered in order", "[redis]") {
    aegis::test::RedisTestServer server;
    boost::asio::io_context io;
    Connection connection(io, local(server.port()));
    connection.start();
    constexpr int kCommands = 2000;
    std::vector<long long> replies;
    int failures = 0;
    for (int i = 0; i < kCommands; ++i)
        connection.command({"INCR", "counter"}, [&](Result<Reply> reply) {
            if (!reply) {
                ++failures;
                return;
            }
            replies.push_back(reply->integer);
        });
    run_until(io, [&] { return static_cast<int>(replies.size()) + failures == kCommands; });
    CHECK(failures == 0);
    REQUIRE(replies.size() == kCommands);
    for (int i = 0; i < kCommands; ++i) CHECK(replies[static_cast<std::size_t>(i)] == i + 1);
    // Binary values go through untouched; an error reply is an error.
    const std::string binary("\0\r\n\xff$*", 6);
    REQUIRE(call(io, connection, {"SET", "bytes", binary}).ok());
    CHECK(call(io, connection, {"GET", "bytes"})->text == binary);
    auto wrong = call(io, connection, {"INCR", "bytes"});
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().message.find("not an integer") != std::string::npos);
    CHECK(call(io, connection, {"GET", "missing"})->is_nil());
    CHECK(connection.connections() == 1);
}

TEST_CASE("redis connection: a command past its deadline fails and the connection is made again", "[redis]") {
    aegis::test::RedisTestServer server;
    boost::asio::io_context io;
    ConnectionOptions options;
    options.command_timeout = std::chrono::milliseconds(300);
    Connection connection(io, local(server.port()), options);
    connection.start();
    REQUIRE(call(io, connection, {"SET", "k", "v"}).ok());
    server.pause();  // accepts nothing, answers nothing
    const auto began = std::chrono::steady_clock::now();
    auto stalled = call(io, connection, {"GET", "k"});
    const auto waited = std::chrono::steady_clock::now() - began;
    REQUIRE_FALSE(stalled.ok());
    CHECK(stalled.error().message.find("no reply within 300 ms") != std::string::npos);
    CHECK(waited >= std::chrono::milliseconds(250));
    CHECK(waited < std::chrono::milliseconds(2'000));
    server.resume();
    auto again = call(io, connection, {"GET", "k"});
    REQUIRE(again.ok());
    CHECK(again->text == "v");
    CHECK(connection.connections() >= 2);
}

TEST_CASE("redis connection: reconnects after the server is killed and restarted", "[redis]") {
    aegis::test::RedisTestServer server;
    boost::asio::io_context io;
    std::vector<bool> states;
    Connection connection(io, local(server.port()));
    connection.on_state([&](bool up, const std::string&) { states.push_back(up); });
    connection.start();
    REQUIRE(call(io, connection, {"SET", "kept", "yes"}).ok());
    server.kill();
    run_until(io, [&] { return !connection.connected(); });
    // Refused while it is down: fails within its deadline rather than waiting for ever.
    auto refused = call(io, connection, {"GET", "kept"});
    CHECK_FALSE(refused.ok());
    server.start();
    // Asked again until the connection is back (its backoff grew while the server was away).
    Result<Reply> back{Reply{}};
    run_until(io, [&] {
        back = call(io, connection, {"GET", "kept"});
        return back.ok();
    });
    CHECK(back->text == "yes");  // appendfsync always: the append-only file had it
    CHECK(connection.connections() == 2);
    CHECK(states == std::vector<bool>{true, false, true});
}

TEST_CASE("redis connection: pub/sub messages reach the handler, after a reconnect too", "[redis]") {
    aegis::test::RedisTestServer server;
    boost::asio::io_context io;
    Connection commands(io, local(server.port()));
    Connection messages(io, local(server.port()));
    std::vector<std::pair<std::string, std::string>> received;
    messages.on_message(
        [&](const std::string& channel, const std::string& payload) { received.emplace_back(channel, payload); });
    messages.subscribe("aegis:test");
    commands.start();
    messages.start();
    // PUBLISH answers how many subscribers got it: 1 once the subscription is in place.
    const auto publish = [&](const std::string& payload) {
        return call(io, commands, {"PUBLISH", "aegis:test", payload})->integer;
    };
    run_until(io, [&] { return publish("first") == 1; });
    run_until(io, [&] { return !received.empty(); });
    CHECK(received.back() == std::make_pair(std::string("aegis:test"), std::string("first")));
    for (int i = 0; i < 100; ++i) CHECK(publish(std::to_string(i)) == 1);
    run_until(io, [&] { return received.back().second == "99"; });
    server.kill();
    server.start();
    // Subscribed again on the new connection.
    run_until(io, [&] {
        auto delivered = call(io, commands, {"PUBLISH", "aegis:test", "after"});
        return delivered.ok() && delivered->integer == 1;
    });
    run_until(io, [&] { return received.back().second == "after"; });
    CHECK(messages.connections() == 2);
}

TEST_CASE("redis connection: set_endpoint abandons a connect that hangs and goes there at once", "[redis]") {
    aegis::test::RedisTestServer server;
    // A listener whose accept queue is full drops the next SYN: a connect to it hangs, as to a
    // host that drops packets.
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor full(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    full.listen(0);
    const auto full_port = full.local_endpoint().port();
    std::vector<boost::asio::ip::tcp::socket> queued;
    for (int i = 0; i < 2; ++i) {
        queued.emplace_back(io);
        boost::system::error_code ignored;
        queued.back().connect(full.local_endpoint(), ignored);
    }
    ConnectionOptions options;
    options.command_timeout = std::chrono::milliseconds(5'000);
    Connection connection(io, local(full_port), options);
    connection.start();
    io.restart();
    io.run_for(std::chrono::milliseconds(200));
    REQUIRE_FALSE(connection.connected());
    const auto began = std::chrono::steady_clock::now();
    connection.set_endpoint(local(server.port()));
    auto answer = call(io, connection, {"PING"});
    REQUIRE(answer.ok());
    CHECK(answer->text == "PONG");
    // Without abandoning the connect, it would wait for the 5 s deadline and a backoff first.
    CHECK(std::chrono::steady_clock::now() - began < std::chrono::milliseconds(1'000));
    CHECK(connection.connections() == 1);
}
