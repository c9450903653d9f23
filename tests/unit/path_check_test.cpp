// aegis-connect --check's runner: the first failing step, its exit code and its fix.

#include "session/path_check.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "crypto/primitives.h"
#include "protocol/reason.h"

using namespace aegis;

namespace {

session::ClientSessionOptions options_for(std::string_view url, const crypto::SigningKey& key) {
    session::ClientSessionOptions options;
    options.url = net::parse_url(url).value();
    options.identity = &key;
    options.pinned_server_keys = {crypto::SigningKey::generate().public_key()};
    return options;
}

// A loopback port nobody listens on: bound, then closed.
std::string free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return std::to_string(acceptor.local_endpoint().port());
}

}  // namespace

TEST_CASE("a refused connection fails at tcp with exit 1 and says what to check", "[path_check]") {
    const auto key = crypto::SigningKey::generate();
    const auto report =
        session::check_path(options_for("ws://127.0.0.1:" + free_port() + "/", key), std::chrono::seconds(5));
    REQUIRE(report.failure.has_value());
    CHECK(report.failure->exit == ExitCode::failure);
    CHECK(report.failed_step == "tcp");
    REQUIRE(report.steps.size() == 2);
    CHECK(report.steps[0].name == "resolve");
    CHECK(report.steps[0].ok);
    CHECK(report.steps[1].name == "tcp");
    CHECK_FALSE(report.steps[1].ok);
    CHECK_THAT(report.steps[1].detail, Catch::Contains("connection refused"));
    CHECK_THAT(report.fix, Catch::Contains("aegis-gateway runs and listens"));
}

TEST_CASE("each step's failure has its own fix", "[path_check]") {
    const auto plain = make_error(ExitCode::unreachable, "x");
    CHECK_THAT(session::fix_for("resolve", plain), Catch::Contains("DNS"));
    CHECK_THAT(session::fix_for("proxy", plain), Catch::Contains("CONNECT"));
    CHECK_THAT(session::fix_for("tls", plain), Catch::Contains("--ca-file"));
    CHECK_THAT(session::fix_for("key", protocol::protocol_error(protocol::Reason::server_key_mismatch)),
               Catch::Contains("--backend-key"));
    CHECK_THAT(session::fix_for("auth", protocol::protocol_error(protocol::Reason::unknown_identity)),
               Catch::Contains("authorize this key"));
    CHECK_THAT(session::fix_for("auth", protocol::protocol_error(protocol::Reason::revoked)),
               Catch::Contains("revoked"));
    CHECK_THAT(session::fix_for("clock", protocol::protocol_error(protocol::Reason::stale_timestamp)),
               Catch::Contains("NTP"));
    CHECK_THAT(session::fix_for("auth", make_error(ExitCode::timeout, "x")), Catch::Contains("--timeout"));
}
