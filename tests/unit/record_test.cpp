#include "protocol/record.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "protocol/handshake.h"
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

const auto kClientToServer = filled<32>(0xC2);
const auto kServerToClient = filled<32>(0x5C);

SessionKeys client_keys() {
    return SessionKeys{crypto::SymmetricKey(kClientToServer), crypto::SymmetricKey(kServerToClient), {}};
}
SessionKeys server_keys() {
    return SessionKeys{crypto::SymmetricKey(kServerToClient), crypto::SymmetricKey(kClientToServer), {}};
}

struct Pair {
    RecordLayer client;
    RecordLayer server;
    explicit Pair(RekeyPolicy policy = {}) : client(client_keys(), policy, kNow), server(server_keys(), policy, kNow) {}
};

Bytes text(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

void expect_failure(Result<Bytes> result, std::initializer_list<Reason> reasons) {
    REQUIRE_FALSE(result.ok());
    const auto reason = reason_of(result.error());
    CHECK(std::find(reasons.begin(), reasons.end(), reason) != reasons.end());
}

}  // namespace

TEST_CASE("records round-trip in both directions", "[record]") {
    Pair p;
    for (int i = 0; i < 50; ++i) {
        const auto up = text("up " + std::to_string(i));
        CHECK(p.server.open(p.client.seal(up, kNow)).value() == up);
        const auto down = text("down " + std::to_string(i));
        CHECK(p.client.open(p.server.seal(down, kNow)).value() == down);
    }
    CHECK(p.client.open(p.server.seal({}, kNow)).value().empty());
    CHECK(p.client.records_sent() == 50);
    CHECK(p.client.records_received() == 51);
    CHECK(p.server.records_received() == 50);
    CHECK(p.client.rekeys_sent() == 0);
}

TEST_CASE("records from a real handshake open on the other side", "[record]") {
    const auto client_id = crypto::SigningKey::generate();
    const auto server_id = crypto::SigningKey::generate();
    ClientOptions options;
    options.identity = &client_id;
    options.pinned_server_keys = {server_id.public_key()};
    options.server_name = "localhost:8443";
    ClientHandshake client(std::move(options));
    ReplayCache cache;
    ServerHandshake server(ServerOptions{&server_id, kDefaultClockSkewMs}, cache);
    auto server_hello = server.on_client_hello(client.start(kNow), kNow);
    auto auth = client.on_server_hello(server_hello.value());
    REQUIRE(server.on_client_auth(auth.value()).ok());
    REQUIRE(client.on_server_finish(server.accept(Accepted{})).ok());
    RecordLayer client_records(client.take_keys(), {}, kNow);
    RecordLayer server_records(server.take_keys(), {}, kNow);
    CHECK(server_records.open(client_records.seal(text("ping"), kNow)).value() == text("ping"));
    CHECK(client_records.open(server_records.seal(text("pong"), kNow)).value() == text("pong"));
}

TEST_CASE("a replayed record is rejected and ends the session", "[record]") {
    Pair p;
    const auto first = p.client.seal(text("one"), kNow);
    const auto second = p.client.seal(text("two"), kNow);
    REQUIRE(p.server.open(first).ok());
    expect_failure(p.server.open(first), {Reason::bad_signature});
    // Once a record failed, even the genuine next record is refused: the session is over.
    expect_failure(p.server.open(second), {Reason::bad_signature});
}

TEST_CASE("a dropped record is detected", "[record]") {
    Pair p;
    (void)p.client.seal(text("lost"), kNow);
    const auto after = p.client.seal(text("after"), kNow);
    expect_failure(p.server.open(after), {Reason::bad_signature});
}

TEST_CASE("reordered records are rejected", "[record]") {
    Pair p;
    const auto first = p.client.seal(text("one"), kNow);
    const auto second = p.client.seal(text("two"), kNow);
    expect_failure(p.server.open(second), {Reason::bad_signature});
    expect_failure(p.server.open(first), {Reason::bad_signature});
}

TEST_CASE("truncated records are rejected", "[record]") {
    const auto record = Pair().client.seal(text("payload"), kNow);
    for (std::size_t length = 0; length < record.size(); ++length) {
        Pair p;
        const Bytes cut(record.begin(), record.begin() + static_cast<std::ptrdiff_t>(length));
        INFO("cut to " << length);
        expect_failure(p.server.open(cut), {Reason::malformed, Reason::bad_signature});
    }
    Pair p;
    Bytes longer = record;
    longer.push_back(0);
    expect_failure(p.server.open(longer), {Reason::bad_signature});
}

TEST_CASE("any changed byte of a record is rejected", "[record]") {
    const auto record = Pair().client.seal(text("payload"), kNow);
    for (std::size_t pos = 0; pos < record.size(); ++pos) {
        for (const std::uint8_t mask : {0x01, 0x80}) {
            Pair p;
            Bytes changed = record;
            changed[pos] ^= mask;
            INFO("byte " << pos << " xor " << int(mask));
            expect_failure(p.server.open(changed), {Reason::bad_signature});
        }
    }
}

TEST_CASE("a record cannot be reflected back to its sender", "[record]") {
    Pair p;
    const auto record = p.client.seal(text("mine"), kNow);
    expect_failure(p.client.open(record), {Reason::bad_signature});
}

TEST_CASE("a record with unknown flags is refused", "[record]") {
    Pair p;
    const Bytes plain{0x02, 'x'};
    const auto record = crypto::aead_seal(crypto::SymmetricKey(kClientToServer), 0, {}, plain);
    expect_failure(p.server.open(record), {Reason::malformed});
}

TEST_CASE("rekeying by record count keeps traffic going both ways", "[record]") {
    Pair p(RekeyPolicy{3, 3'600'000});
    for (int i = 0; i < 100; ++i) {
        const auto up = text("u" + std::to_string(i));
        REQUIRE(p.server.open(p.client.seal(up, kNow)).value() == up);
        const auto down = text("d" + std::to_string(i));
        REQUIRE(p.client.open(p.server.seal(down, kNow)).value() == down);
    }
    // Every third record announces a key update: at most 3 records under one key.
    CHECK(p.client.rekeys_sent() == 33);
    CHECK(p.server.rekeys_received() == 33);
    CHECK(p.server.rekeys_sent() == 33);
    CHECK(p.client.rekeys_received() == 33);
}

TEST_CASE("a key update switches to KDF(old key, \"aegis/1 rekey\", \"\") with the counter reset", "[record]") {
    Pair p;
    p.client.request_rekey();
    const auto announcing = p.client.seal(text("last under k0"), kNow);
    const auto next = p.client.seal(text("first under k1"), kNow);
    CHECK(p.client.rekeys_sent() == 1);

    const auto k0 = crypto::SymmetricKey(kClientToServer);
    const auto opened = crypto::aead_open(k0, 0, {}, announcing);
    REQUIRE(opened.has_value());
    CHECK((*opened)[0] == 0x01);  // KEY_UPDATE
    const auto k1 = crypto::kdf(k0.view(), "aegis/1 rekey", {});
    const auto second = crypto::aead_open(k1, 0, {}, next);
    REQUIRE(second.has_value());
    CHECK((*second)[0] == 0x00);
    CHECK(Bytes(second->begin() + 1, second->end()) == text("first under k1"));
    CHECK_FALSE(crypto::aead_open(k0, 1, {}, next).has_value());

    REQUIRE(p.server.open(announcing).ok());
    CHECK(p.server.open(next).value() == text("first under k1"));
    CHECK(p.server.rekeys_received() == 1);
}

TEST_CASE("rekeying by key age keeps traffic going", "[record]") {
    Pair p(RekeyPolicy{1'000'000, 1'000});
    std::uint64_t now = kNow;
    REQUIRE(p.server.open(p.client.seal(text("a"), now)).ok());
    now += 999;
    REQUIRE(p.server.open(p.client.seal(text("b"), now)).ok());
    CHECK(p.client.rekeys_sent() == 0);
    now += 1;  // the key is now 1000 ms old
    REQUIRE(p.server.open(p.client.seal(text("c"), now)).ok());
    CHECK(p.client.rekeys_sent() == 1);
    REQUIRE(p.server.open(p.client.seal(text("d"), now + 500)).ok());
    CHECK(p.client.rekeys_sent() == 1);  // the age counts from the update
    for (int i = 0; i < 20; ++i) {
        now += 700;
        REQUIRE(p.server.open(p.client.seal(text("e"), now)).ok());
        REQUIRE(p.client.open(p.server.seal(text("f"), now)).ok());
    }
    // Every second 700 ms step crosses 1000 ms for each side.
    CHECK(p.client.rekeys_sent() == 11);
    CHECK(p.server.rekeys_received() == 11);
    CHECK(p.server.rekeys_sent() == 10);
    CHECK(p.client.rekeys_received() == 10);
    // A clock that steps back does not break anything.
    REQUIRE(p.server.open(p.client.seal(text("g"), kNow)).ok());
}

TEST_CASE("request_rekey updates the key on the next record only", "[record]") {
    Pair p;
    p.server.request_rekey();
    REQUIRE(p.client.open(p.server.seal(text("1"), kNow)).ok());
    REQUIRE(p.client.open(p.server.seal(text("2"), kNow)).ok());
    CHECK(p.server.rekeys_sent() == 1);
    CHECK(p.client.rekeys_received() == 1);
    p.server.request_rekey();
    REQUIRE(p.client.open(p.server.seal(text("3"), kNow)).ok());
    CHECK(p.client.rekeys_received() == 2);
    // A receiver that missed the update cannot read on.
    Pair q;
    q.client.request_rekey();
    (void)q.client.seal(text("update"), kNow);
    const auto later = q.client.seal(text("later"), kNow);
    expect_failure(q.server.open(later), {Reason::bad_signature});
}

TEST_CASE("a zero record limit still works: every record updates the key", "[record]") {
    Pair p(RekeyPolicy{0, 3'600'000});
    for (int i = 0; i < 5; ++i) REQUIRE(p.server.open(p.client.seal(text("x"), kNow)).ok());
    CHECK(p.client.rekeys_sent() == 5);
}
