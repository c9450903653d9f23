#include "protocol/handshake.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "protocol/reason.h"

using namespace aegis;
using namespace aegis::protocol;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000'000;

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t byte) {
    std::array<std::uint8_t, N> out{};
    out.fill(byte);
    return out;
}

Bytes key_bytes(const crypto::SymmetricKey& key) {
    return Bytes(key.view().begin(), key.view().end());
}

bool contains(ByteView haystack, ByteView needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

struct Identities {
    crypto::SigningKey client = crypto::SigningKey::from_seed(filled<32>(0x01));
    crypto::SigningKey server = crypto::SigningKey::from_seed(filled<32>(0x02));

    [[nodiscard]] ClientOptions client_options() const {
        ClientOptions options;
        options.identity = &client;
        options.pinned_server_keys = {server.public_key()};
        options.requested_id = "host42";
        options.server_name = "gateway.example:8443/aegis";
        return options;
    }
    [[nodiscard]] ServerOptions server_options() const { return ServerOptions{&server, kDefaultClockSkewMs}; }
};

Accepted sample_grant() {
    Accepted grant;
    grant.session_id = filled<16>(0x07);
    grant.session_token = filled<32>(0x08);
    grant.resume_point = 42;
    grant.assigned_id = "host42";
    grant.role = Role::agent;
    return grant;
}

const EphemeralSecrets kClientFixed{filled<32>(0x03), filled<32>(0x04)};
const EphemeralSecrets kServerFixed{filled<32>(0x05), filled<32>(0x06)};

struct Messages {
    Bytes hello, server_hello, auth, finish;
};

// The four messages of an accepted handshake with fixed randomness.
Messages reference_messages(const Identities& ids) {
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    Messages m;
    m.hello = client.start(kNow, &kClientFixed);
    m.server_hello = server.on_client_hello(m.hello, kNow, &kServerFixed).value();
    m.auth = client.on_server_hello(m.server_hello).value();
    REQUIRE(server.on_client_auth(m.auth).ok());
    m.finish = server.accept(sample_grant());
    REQUIRE(client.on_server_finish(m.finish).ok());
    return m;
}

// Runs the handshake with `replace` substituted for message `which` (0..3) and returns the
// first error either side reports; an empty optional means the handshake completed.
std::optional<Error> run_with(const Identities& ids, int which, const Bytes& replace) {
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto hello = client.start(kNow, &kClientFixed);
    if (which == 0) hello = replace;
    auto server_hello = server.on_client_hello(hello, kNow, &kServerFixed);
    if (!server_hello) return server_hello.error();
    if (which == 1) *server_hello = replace;
    auto auth = client.on_server_hello(*server_hello);
    if (!auth) return auth.error();
    if (which == 2) *auth = replace;
    auto claim = server.on_client_auth(*auth);
    if (!claim) return claim.error();
    auto finish = server.accept(sample_grant());
    if (which == 3) finish = replace;
    auto accepted = client.on_server_finish(finish);
    if (!accepted) return accepted.error();
    return std::nullopt;
}

const std::set<Reason> kTamperReasons{Reason::malformed, Reason::unsupported_version, Reason::stale_timestamp,
                                      Reason::bad_signature};

}  // namespace

TEST_CASE("handshake succeeds and both sides derive the same keys", "[handshake]") {
    Identities ids;
    auto options = ids.client_options();
    options.resume_token = filled<32>(0x2A);
    ClientHandshake client(std::move(options));
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);

    const auto hello = client.start(kNow);
    auto server_hello = server.on_client_hello(hello, kNow + 1000);
    REQUIRE(server_hello.ok());
    auto auth = client.on_server_hello(*server_hello);
    REQUIRE(auth.ok());
    CHECK(client.server_key() == ids.server.public_key());
    auto claim = server.on_client_auth(*auth);
    REQUIRE(claim.ok());
    CHECK(claim->key == ids.client.public_key());
    CHECK(claim->requested_id == "host42");
    CHECK(claim->resume_token == filled<32>(0x2A));
    CHECK_FALSE(server.established());

    const auto grant = sample_grant();
    auto accepted = client.on_server_finish(server.accept(grant));
    REQUIRE(accepted.ok());
    CHECK(accepted->session_id == grant.session_id);
    CHECK(accepted->session_token == grant.session_token);
    CHECK(accepted->resume_point == 42);
    CHECK(accepted->assigned_id == "host42");
    CHECK(accepted->role == Role::agent);

    REQUIRE(client.established());
    REQUIRE(server.established());
    CHECK(client.transcript_hash() == server.transcript_hash());
    CHECK(client.transcript_hash() != crypto::Hash{});
    auto client_keys = client.take_keys();
    auto server_keys = server.take_keys();
    CHECK(key_bytes(client_keys.send) == key_bytes(server_keys.receive));
    CHECK(key_bytes(client_keys.receive) == key_bytes(server_keys.send));
    CHECK(key_bytes(client_keys.send) != key_bytes(client_keys.receive));
    CHECK(client_keys.transcript_hash == server_keys.transcript_hash);

    // Keys are handed out once; a second take gives keys that match nothing.
    CHECK_FALSE(client.established());
    auto again = client.take_keys();
    CHECK(key_bytes(again.send) != key_bytes(client_keys.send));
    CHECK(key_bytes(again.send) != key_bytes(server_keys.receive));
}

TEST_CASE("fresh handshakes draw fresh keys", "[handshake]") {
    Identities ids;
    std::set<Bytes> seen;
    for (int i = 0; i < 3; ++i) {
        ClientHandshake client(ids.client_options());
        ReplayCache cache;
        ServerHandshake server(ids.server_options(), cache);
        auto server_hello = server.on_client_hello(client.start(kNow), kNow);
        REQUIRE(server_hello.ok());
        auto auth = client.on_server_hello(*server_hello);
        REQUIRE(auth.ok());
        REQUIRE(server.on_client_auth(*auth).ok());
        REQUIRE(client.on_server_finish(server.accept(sample_grant())).ok());
        seen.insert(key_bytes(client.take_keys().send));
    }
    CHECK(seen.size() == 3);
}

TEST_CASE("the client identity never travels in the clear", "[handshake]") {
    Identities ids;
    const auto m = reference_messages(ids);
    for (const auto* message : {&m.hello, &m.server_hello, &m.auth, &m.finish}) {
        CHECK_FALSE(contains(*message, ids.client.public_key()));
        CHECK_FALSE(contains(*message, as_bytes("host42")));
        CHECK_FALSE(contains(*message, ids.server.public_key()));
    }
    // The server name is sent (and bound) in the clear, as in TLS SNI.
    CHECK(contains(m.hello, as_bytes("gateway.example:8443/aegis")));
}

TEST_CASE("changing any byte of any handshake message makes the handshake fail", "[handshake]") {
    Identities ids;
    const auto m = reference_messages(ids);
    REQUIRE_FALSE(run_with(ids, 0, m.hello).has_value());  // the unchanged run succeeds

    const std::array<const Bytes*, 4> messages{&m.hello, &m.server_hello, &m.auth, &m.finish};
    std::size_t runs = 0;
    for (int which = 0; which < 4; ++which) {
        const Bytes& original = *messages[static_cast<std::size_t>(which)];
        for (std::size_t pos = 0; pos < original.size(); ++pos) {
            for (const std::uint8_t mask : {0x01, 0x80, 0xFF}) {
                Bytes changed = original;
                changed[pos] ^= mask;
                const auto error = run_with(ids, which, changed);
                INFO("message " << which + 1 << ", byte " << pos << ", xor " << int(mask));
                REQUIRE(error.has_value());
                CHECK(kTamperReasons.count(reason_of(*error)) == 1);
                ++runs;
            }
        }
    }
    CHECK(runs == 3 * (m.hello.size() + m.server_hello.size() + m.auth.size() + m.finish.size()));
}

TEST_CASE("a truncated or extended handshake message makes the handshake fail", "[handshake]") {
    Identities ids;
    const auto m = reference_messages(ids);
    const std::array<const Bytes*, 4> messages{&m.hello, &m.server_hello, &m.auth, &m.finish};
    for (int which = 0; which < 4; ++which) {
        const Bytes& original = *messages[static_cast<std::size_t>(which)];
        for (std::size_t length = 0; length < original.size(); ++length) {
            const Bytes cut(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(length));
            const auto error = run_with(ids, which, cut);
            INFO("message " << which + 1 << " cut to " << length);
            REQUIRE(error.has_value());
            CHECK(kTamperReasons.count(reason_of(*error)) == 1);
        }
        Bytes longer = original;
        longer.push_back(0);
        const auto error = run_with(ids, which, longer);
        INFO("message " << which + 1 << " extended");
        REQUIRE(error.has_value());
        if (which == 0) {
            // One more byte reads as ClientHello's optional options field (§3.1): a ClientHello
            // the client never sent, so the transcripts differ and the client refuses the server's
            // proof. Two more bytes are malformed.
            CHECK(kTamperReasons.count(reason_of(*error)) == 1);
            longer.push_back(0);
            const auto two = run_with(ids, which, longer);
            REQUIRE(two.has_value());
            CHECK(reason_of(*two) == Reason::malformed);
        } else {
            CHECK(reason_of(*error) == Reason::malformed);
        }
        const auto huge = run_with(ids, which, Bytes(kMaxHandshakeMessageBytes + 1, 0x01));
        REQUIRE(huge.has_value());
        CHECK(reason_of(*huge) == Reason::malformed);
    }
}

TEST_CASE("a server key that is not the pinned one is refused before message 3", "[handshake]") {
    Identities ids;
    const auto impostor = crypto::SigningKey::from_seed(filled<32>(0x09));
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ServerOptions{&impostor, kDefaultClockSkewMs}, cache);
    auto server_hello = server.on_client_hello(client.start(kNow), kNow);
    REQUIRE(server_hello.ok());
    auto auth = client.on_server_hello(*server_hello);
    REQUIRE_FALSE(auth.ok());
    CHECK(reason_of(auth.error()) == Reason::server_key_mismatch);
    CHECK(auth.error().exit == ExitCode::refused);
    CHECK_THAT(auth.error().message, Catch::Contains(crypto::fingerprint(impostor.public_key())));
    CHECK_THAT(auth.error().message, Catch::Contains(crypto::fingerprint(ids.server.public_key())));
    CHECK(client.server_key() == impostor.public_key());
    // The handshake is over: nothing further can be produced or accepted.
    auto finish = client.on_server_finish(Bytes{4, 0, 0, 0, 0});
    REQUIRE_FALSE(finish.ok());
    CHECK(reason_of(finish.error()) == Reason::server_key_mismatch);
    CHECK_FALSE(client.established());
}

TEST_CASE("without a pinned key the caller sees the server key (trust on first use)", "[handshake]") {
    Identities ids;
    auto options = ids.client_options();
    options.pinned_server_keys.clear();
    ClientHandshake client(std::move(options));
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto server_hello = server.on_client_hello(client.start(kNow), kNow);
    REQUIRE(server_hello.ok());
    REQUIRE(client.on_server_hello(*server_hello).ok());
    CHECK(client.server_key() == ids.server.public_key());
}

TEST_CASE("timestamps outside the clock-skew tolerance are refused", "[handshake]") {
    Identities ids;
    const auto hello_at = [&](std::uint64_t client_now, std::uint64_t server_now, std::uint64_t skew) {
        ClientHandshake client(ids.client_options());
        ReplayCache cache;
        ServerHandshake server(ServerOptions{&ids.server, skew}, cache);
        auto result = server.on_client_hello(client.start(client_now), server_now);
        if (result) return Reason::none;
        // The refusal reaches the client as an Alert with the same reason.
        const auto alert = server.refuse(reason_of(result.error()), result.error().message);
        auto seen = client.on_server_hello(alert);
        REQUIRE_FALSE(seen.ok());
        CHECK(reason_of(seen.error()) == reason_of(result.error()));
        CHECK(seen.error().exit == exit_code_for(reason_of(result.error())));
        return reason_of(result.error());
    };
    const auto skew = kDefaultClockSkewMs;
    CHECK(hello_at(kNow, kNow + skew, skew) == Reason::none);
    CHECK(hello_at(kNow, kNow - skew, skew) == Reason::none);
    CHECK(hello_at(kNow, kNow + skew + 1, skew) == Reason::stale_timestamp);  // client clock behind
    CHECK(hello_at(kNow, kNow - skew - 1, skew) == Reason::stale_timestamp);  // client clock ahead
    CHECK(hello_at(0, kNow, skew) == Reason::stale_timestamp);
    CHECK(hello_at(UINT64_MAX, kNow, skew) == Reason::stale_timestamp);
    // The tolerance is configurable.
    CHECK(hello_at(kNow, kNow + 4'999, 5'000) == Reason::none);
    CHECK(hello_at(kNow, kNow + 5'001, 5'000) == Reason::stale_timestamp);
    CHECK(hello_at(kNow, kNow - 5'001, 5'000) == Reason::stale_timestamp);
    CHECK(hello_at(kNow, kNow + 600'000, 3'600'000) == Reason::none);
    // The error says which way the clock is off and by how much.
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto result = server.on_client_hello(client.start(kNow), kNow + 300'000);
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.error().message, Catch::Contains("300000 ms behind"));
    CHECK(result.error().exit == ExitCode::refused);
    // Passed on as the Alert text, it reads once, prefixed by who said it.
    auto seen = client.on_server_hello(server.refuse(reason_of(result.error()), result.error().message));
    REQUIRE_FALSE(seen.ok());
    CHECK(seen.error().message ==
          "handshake timestamp outside the clock-skew tolerance: refused by the server: client clock is 300000 ms "
          "behind the server's, tolerance 120000 ms");
}

TEST_CASE("the same ClientHello twice is refused as replayed", "[handshake]") {
    Identities ids;
    ReplayCache cache;
    ClientHandshake client(ids.client_options());
    const auto hello = client.start(kNow);
    ServerHandshake first(ids.server_options(), cache);
    REQUIRE(first.on_client_hello(hello, kNow).ok());
    ServerHandshake second(ids.server_options(), cache);
    auto replay = second.on_client_hello(hello, kNow + 10);
    REQUIRE_FALSE(replay.ok());
    CHECK(reason_of(replay.error()) == Reason::replayed);
    // A different hello from the same client is fine.
    ClientHandshake other(ids.client_options());
    ServerHandshake third(ids.server_options(), cache);
    CHECK(third.on_client_hello(other.start(kNow), kNow + 20).ok());
}

TEST_CASE("the replay cache expires old entries and fails closed when full", "[handshake]") {
    ReplayCache cache(1'000, 2);
    const auto a = filled<32>(0xA1);
    const auto b = filled<32>(0xB2);
    const auto c = filled<32>(0xC3);
    CHECK(cache.remember(a, 10'000));
    CHECK_FALSE(cache.remember(a, 10'500));
    CHECK_FALSE(cache.full());
    CHECK(cache.remember(b, 10'600));
    CHECK(cache.full());
    CHECK_FALSE(cache.remember(c, 10'700));  // full of live entries: refuse, never forget early
    CHECK_FALSE(cache.remember(a, 11'000));  // still inside the window
    CHECK(cache.remember(c, 11'001));        // a expired, making room
    CHECK(cache.remember(a, 11'700));        // a's old entry is gone (b expired too)
    CHECK_FALSE(cache.remember(c, 11'800));
    // Time going backwards keeps entries rather than dropping them.
    CHECK_FALSE(cache.remember(c, 5'000));
}

TEST_CASE("a server whose replay cache is full answers busy", "[handshake]") {
    Identities ids;
    ReplayCache cache(10'000, 1);
    ClientHandshake one(ids.client_options());
    ServerHandshake first(ids.server_options(), cache);
    REQUIRE(first.on_client_hello(one.start(kNow), kNow).ok());
    ClientHandshake two(ids.client_options());
    ServerHandshake second(ids.server_options(), cache);
    auto refused = second.on_client_hello(two.start(kNow), kNow);
    REQUIRE_FALSE(refused.ok());
    CHECK(reason_of(refused.error()) == Reason::busy);
    CHECK_FALSE(is_permanent(Reason::busy));
}

TEST_CASE("a client speaking another version is refused with unsupported_version", "[handshake]") {
    Identities ids;
    ClientHandshake client(ids.client_options());
    auto hello = client.start(kNow);
    hello[1] = 2;
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto result = server.on_client_hello(hello, kNow);
    REQUIRE_FALSE(result.ok());
    CHECK(reason_of(result.error()) == Reason::unsupported_version);
    // A future hello may be laid out differently: only type and version are read before refusing.
    const Bytes future{1, 2, 0xDE, 0xAD};
    ServerHandshake other(ids.server_options(), cache);
    auto short_future = other.on_client_hello(future, kNow);
    REQUIRE_FALSE(short_future.ok());
    CHECK(reason_of(short_future.error()) == Reason::unsupported_version);
}

TEST_CASE("an unauthorized client gets the server's typed refusal", "[handshake]") {
    Identities ids;
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto server_hello = server.on_client_hello(client.start(kNow), kNow);
    REQUIRE(server_hello.ok());
    auto auth = client.on_server_hello(*server_hello);
    REQUIRE(auth.ok());
    auto claim = server.on_client_auth(*auth);
    REQUIRE(claim.ok());
    const auto refusal = server.refuse(Reason::unknown_identity,
                                       "key " + crypto::fingerprint(claim->key) + " is not in authorized_keys");
    CHECK(refusal[0] == static_cast<std::uint8_t>(HandshakeType::server_finish));  // encrypted, not an Alert
    CHECK_FALSE(contains(refusal, as_bytes("authorized_keys")));
    auto result = client.on_server_finish(refusal);
    REQUIRE_FALSE(result.ok());
    CHECK(reason_of(result.error()) == Reason::unknown_identity);
    CHECK(result.error().exit == ExitCode::refused);
    CHECK_THAT(result.error().message, Catch::Contains("not in authorized_keys"));
    CHECK_FALSE(client.established());
    CHECK_FALSE(server.established());
    // Neither side hands out working keys after a refusal.
    CHECK(key_bytes(client.take_keys().send) != key_bytes(server.take_keys().receive));
}

TEST_CASE("a refusal before keys exist is a plaintext Alert the client reports", "[handshake]") {
    Identities ids;
    ClientHandshake client(ids.client_options());
    (void)client.start(kNow);
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    const auto alert = server.refuse(Reason::shutting_down, "restarting\x1b[2J");
    CHECK(alert[0] == static_cast<std::uint8_t>(HandshakeType::alert));
    auto result = client.on_server_hello(alert);
    REQUIRE_FALSE(result.ok());
    CHECK(reason_of(result.error()) == Reason::shutting_down);
    CHECK(result.error().exit == ExitCode::failure);
    // Control bytes from the peer never reach the message.
    CHECK(result.error().message.find('\x1b') == std::string::npos);
    CHECK_THAT(result.error().message, Catch::Contains("restarting?[2J"));
}

TEST_CASE("an Alert in place of ServerFinish gives its reason", "[handshake]") {
    Identities ids;
    ClientHandshake client(ids.client_options());
    ReplayCache cache;
    ServerHandshake server(ids.server_options(), cache);
    auto server_hello = server.on_client_hello(client.start(kNow), kNow);
    REQUIRE(client.on_server_hello(server_hello.value()).ok());
    // The server never got message 3 (say, it was cut): its refusal cannot be encrypted yet.
    const auto alert = server.refuse(Reason::timeout, "no ClientAuth in time");
    CHECK(alert[0] == static_cast<std::uint8_t>(HandshakeType::alert));
    auto result = client.on_server_finish(alert);
    REQUIRE_FALSE(result.ok());
    CHECK(reason_of(result.error()) == Reason::timeout);
    CHECK(result.error().exit == ExitCode::timeout);
}

TEST_CASE("calling the handshake out of order gives errors, never keys", "[handshake]") {
    Identities ids;
    SECTION("client steps before start") {
        ClientHandshake client(ids.client_options());
        auto early = client.on_server_hello(Bytes{2, 1});
        REQUIRE_FALSE(early.ok());
        CHECK_THAT(early.error().message, Catch::Contains("out of order"));
        CHECK(client.start(kNow).empty());  // the handshake is over
        CHECK_FALSE(client.on_server_finish(Bytes{4}).ok());
        CHECK_FALSE(client.established());
    }
    SECTION("client start twice and finish before hello") {
        ClientHandshake client(ids.client_options());
        CHECK_FALSE(client.start(kNow).empty());
        CHECK(client.start(kNow).empty());
        CHECK_FALSE(client.on_server_finish(Bytes{4}).ok());
    }
    SECTION("client without an identity or with oversized options") {
        ClientOptions none;
        ClientHandshake client(none);
        CHECK(client.start(kNow).empty());
        auto options = ids.client_options();
        options.requested_id = std::string(256, 'a');
        ClientHandshake long_id(options);
        CHECK(long_id.start(kNow).empty());
        options = ids.client_options();
        options.server_name = std::string(kMaxServerNameBytes + 1, 'a');
        ClientHandshake long_name(options);
        CHECK(long_name.start(kNow).empty());
    }
    SECTION("server steps out of order") {
        ReplayCache cache;
        ServerHandshake server(ids.server_options(), cache);
        CHECK_FALSE(server.on_client_auth(Bytes{3}).ok());
        ClientHandshake client(ids.client_options());
        CHECK_FALSE(server.on_client_hello(client.start(kNow), kNow).ok());
        CHECK_FALSE(server.established());
    }
    SECTION("server hello twice") {
        ReplayCache cache;
        ServerHandshake server(ids.server_options(), cache);
        ClientHandshake client(ids.client_options());
        const auto hello = client.start(kNow);
        REQUIRE(server.on_client_hello(hello, kNow).ok());
        CHECK_FALSE(server.on_client_hello(hello, kNow).ok());
    }
    SECTION("server accept before the client proved its identity") {
        ReplayCache cache;
        ServerHandshake server(ids.server_options(), cache);
        ClientHandshake client(ids.client_options());
        auto server_hello = server.on_client_hello(client.start(kNow), kNow);
        REQUIRE(client.on_server_hello(server_hello.value()).ok());
        const auto premature = server.accept(sample_grant());
        CHECK_FALSE(server.established());
        auto result = client.on_server_finish(premature);
        REQUIRE_FALSE(result.ok());
        CHECK(reason_of(result.error()) == Reason::internal);
    }
    SECTION("server accepts at most once") {
        ReplayCache cache;
        ServerHandshake server(ids.server_options(), cache);
        ClientHandshake client(ids.client_options());
        auto server_hello = server.on_client_hello(client.start(kNow), kNow);
        auto auth = client.on_server_hello(server_hello.value());
        REQUIRE(server.on_client_auth(auth.value()).ok());
        const auto finish = server.accept(sample_grant());
        const auto second = server.accept(sample_grant());
        CHECK(second != finish);
        CHECK(second[0] == static_cast<std::uint8_t>(HandshakeType::alert));
        REQUIRE(client.on_server_finish(finish).ok());
    }
    SECTION("a server without identity refuses") {
        ReplayCache cache;
        ServerHandshake server(ServerOptions{}, cache);
        ClientHandshake client(ids.client_options());
        CHECK_FALSE(server.on_client_hello(client.start(kNow), kNow).ok());
    }
    SECTION("moved-from handshakes") {
        ClientHandshake client(ids.client_options());
        ClientHandshake moved(std::move(client));
        CHECK(client.start(kNow).empty());  // NOLINT(bugprone-use-after-move)
        CHECK_FALSE(client.on_server_hello(Bytes{2}).ok());
        CHECK(client.transcript_hash() == crypto::Hash{});
        CHECK_FALSE(moved.start(kNow).empty());
    }
}

TEST_CASE("reasons map to names, descriptions and exit codes", "[reason]") {
    CHECK(name(Reason::unknown_identity) == "unknown_identity");
    CHECK(describe(Reason::unknown_identity) == "unknown identity");
    CHECK(name(static_cast<Reason>(999)) == "unknown");

    for (const auto r :
         {Reason::unknown_identity, Reason::server_key_mismatch, Reason::access_denied, Reason::too_large,
          Reason::revoked, Reason::bad_signature, Reason::expired, Reason::no_responders}) {
        CHECK(exit_code_for(r) == ExitCode::refused);
    }
    CHECK(exit_code_for(Reason::timeout) == ExitCode::timeout);
    CHECK(exit_code_for(Reason::invalid_channel) == ExitCode::bad_input);
    CHECK(exit_code_for(Reason::malformed) == ExitCode::bad_input);
    for (const auto r : {Reason::busy, Reason::shutting_down, Reason::internal, Reason::replaced}) {
        CHECK(exit_code_for(r) == ExitCode::failure);
        CHECK_FALSE(is_permanent(r));
    }
    const std::set<Reason> permanent{Reason::access_denied, Reason::too_large,    Reason::invalid_channel,
                                     Reason::expired,       Reason::malformed,    Reason::unknown_identity,
                                     Reason::revoked,       Reason::no_responders};
    std::set<std::string_view> names;
    for (std::uint16_t value = 0; value <= static_cast<std::uint16_t>(Reason::no_responders); ++value) {
        const auto r = static_cast<Reason>(value);
        CHECK(is_permanent(r) == (permanent.count(r) == 1));
        CHECK(exit_code_for(r) != ExitCode::ok);
        names.insert(name(r));
    }
    CHECK(names.size() == 19);  // every name distinct
    // Transient: a queued message refused for it waits and is retried, never dead-lettered.
    CHECK(static_cast<std::uint16_t>(Reason::channel_disabled) == 19);
    CHECK(name(Reason::channel_disabled) == "channel_disabled");
    CHECK(describe(Reason::channel_disabled) == "channel disabled at the gateway");
    CHECK(exit_code_for(Reason::channel_disabled) == ExitCode::refused);
    CHECK_FALSE(is_permanent(Reason::channel_disabled));

    const auto error = protocol_error(Reason::access_denied, "agent.x.> is not yours");
    CHECK(error.message == "access denied: agent.x.> is not yours");
    CHECK(error.exit == ExitCode::refused);
    CHECK(reason_of(error) == Reason::access_denied);
    CHECK(protocol_error(Reason::busy).message == "peer busy, try again later");
    CHECK(reason_of(make_error(ExitCode::usage, "bad flag")) == Reason::none);
}

TEST_CASE("reason texts are clipped on a UTF-8 boundary", "[reason]") {
    CHECK(clip_reason_text("short") == "short");
    const std::string ascii(kMaxReasonTextBytes + 10, 'a');
    CHECK(clip_reason_text(ascii).size() == kMaxReasonTextBytes);
    // 'é' is two bytes; place one across the limit.
    std::string text(kMaxReasonTextBytes - 1, 'a');
    text += "\xc3\xa9tail";
    const auto clipped = clip_reason_text(text);
    CHECK(clipped.size() == kMaxReasonTextBytes - 1);
    CHECK(clipped.back() == 'a');
}
