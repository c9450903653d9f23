#include "crypto/primitives.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <string>

#include "child_process.h"
#include "core/wire.h"

using namespace aegis;

TEST_CASE("base64 round-trips and rejects garbage", "[crypto]") {
    const Bytes data{0, 1, 2, 250, 251, 252, 253};
    for (bool padded : {true, false}) {
        const auto text = crypto::base64_encode(data, padded);
        const auto back = crypto::base64_decode(text, padded);
        REQUIRE(back.has_value());
        CHECK(*back == data);
    }
    CHECK(crypto::base64_encode(as_bytes("hi")) == "aGk=");
    CHECK_FALSE(crypto::base64_decode("a!b=").has_value());
    CHECK_FALSE(crypto::base64_decode("aGk=x").has_value());
}

TEST_CASE("hex round-trips", "[crypto]") {
    const Bytes data{0xde, 0xad, 0xbe, 0xef};
    CHECK(crypto::hex_encode(data) == "deadbeef");
    CHECK(crypto::hex_decode("deadbeef").value() == data);
    CHECK_FALSE(crypto::hex_decode("abc").has_value());
    CHECK_FALSE(crypto::hex_decode("zz").has_value());
}

TEST_CASE("BLAKE2b-256 matches the reference value and the incremental form", "[crypto]") {
    // BLAKE2b-256("abc"), from the RFC 7693 reference implementation.
    CHECK(crypto::hex_encode(crypto::blake2b(as_bytes("abc"))) ==
          "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    crypto::Blake2b running;
    running.update(as_bytes("a"));
    const auto partial = running.peek();
    running.update(as_bytes("bc"));
    CHECK(running.peek() == crypto::blake2b(as_bytes("abc")));
    CHECK(partial == crypto::blake2b(as_bytes("a")));
}

TEST_CASE("SHA-256 matches FIPS 180-2", "[crypto]") {
    CHECK(crypto::hex_encode(crypto::sha256(as_bytes("abc"))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Ed25519 matches RFC 8032 test 1 and rejects a changed message", "[crypto]") {
    const auto seed = crypto::hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value();
    const auto key = crypto::SigningKey::from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
    CHECK(crypto::hex_encode(key.public_key()) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const auto sig = key.sign({});
    CHECK(crypto::hex_encode(sig) ==
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595b"
          "be24655141438e7a100b");
    CHECK(crypto::verify(key.public_key(), {}, sig));
    CHECK_FALSE(crypto::verify(key.public_key(), as_bytes("x"), sig));
}

TEST_CASE("X25519 matches RFC 7748 and rejects a low-order point", "[crypto]") {
    const auto a = crypto::hex_decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").value();
    const auto b = crypto::hex_decode("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb").value();
    const auto alice = crypto::EphemeralKey::from_secret(std::span<const std::uint8_t, 32>(a.data(), 32));
    const auto bob = crypto::EphemeralKey::from_secret(std::span<const std::uint8_t, 32>(b.data(), 32));
    CHECK(crypto::hex_encode(alice.public_key()) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const auto shared = alice.agree(bob.public_key());
    REQUIRE(shared.has_value());
    CHECK(crypto::hex_encode(ByteView(shared->data(), 32)) ==
          "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    CHECK_FALSE(alice.agree(crypto::PublicKey{}).has_value());
}

TEST_CASE("ChaCha20-Poly1305 seals and opens; a changed byte, counter or AD fails", "[crypto]") {
    crypto::SymmetricKey key;
    crypto::random_bytes(key.mutable_view());
    const auto sealed = crypto::aead_seal(key, 7, as_bytes("ad"), as_bytes("hello"));
    CHECK(sealed.size() == 5 + crypto::kAeadTagSize);
    CHECK(crypto::aead_open(key, 7, as_bytes("ad"), sealed).value() ==
          Bytes(as_bytes("hello").begin(), as_bytes("hello").end()));
    CHECK_FALSE(crypto::aead_open(key, 8, as_bytes("ad"), sealed).has_value());
    CHECK_FALSE(crypto::aead_open(key, 7, as_bytes("ae"), sealed).has_value());
    auto flipped = sealed;
    flipped[0] ^= 1;
    CHECK_FALSE(crypto::aead_open(key, 7, as_bytes("ad"), flipped).has_value());
    CHECK_FALSE(crypto::aead_open(key, 7, as_bytes("ad"), Bytes(3)).has_value());
}

TEST_CASE("fingerprint is SHA256: and unpadded base64", "[crypto]") {
    const crypto::PublicKey zero{};
    const auto fp = crypto::fingerprint(zero);
    CHECK(fp.rfind("SHA256:", 0) == 0);
    CHECK(fp.size() == 7 + 43);
    CHECK(fp.find('=') == std::string::npos);
}

TEST_CASE("buffered random bytes never repeat and a forked child draws its own", "[crypto]") {
    std::set<std::array<std::uint8_t, 16>> seen;
    for (int i = 0; i < 20'000; ++i) {  // many refills of the 4 KiB buffer
        std::array<std::uint8_t, 16> value{};
        crypto::random_bytes_buffered(value);
        CHECK(seen.insert(value).second);
    }
    std::array<std::uint8_t, 16> probe{};
    crypto::random_bytes_buffered(probe);  // the buffer is part-used now: a child could draw the rest
    const auto child = test::run_in_child([](int out) {
        std::string drawn;
        for (int i = 0; i < 64; ++i) {
            std::array<std::uint8_t, 16> value{};
            crypto::random_bytes_buffered(value);
            drawn.append(reinterpret_cast<const char*>(value.data()), value.size());
        }
        test::write_text(out, drawn);
        return 0;
    });
    REQUIRE(WIFEXITED(child.status));
    REQUIRE(child.output.size() == 64 * 16);
    std::array<std::uint8_t, 16> value{};
    for (int i = 0; i < 64; ++i) {
        crypto::random_bytes_buffered(value);
        seen.insert(value);
    }
    for (std::size_t at = 0; at < child.output.size(); at += value.size()) {  // none of the parent's next draws
        std::memcpy(value.data(), child.output.data() + at, value.size());
        CHECK(seen.count(value) == 0);
    }
}

TEST_CASE("wire reader never reads past its input", "[wire]") {
    WireWriter w;
    w.u8(1);
    w.u16(0x0203);
    w.u64(0x0102030405060708ULL);
    w.text8("abc");
    const auto bytes = w.take();
    CHECK(bytes.size() == 1 + 2 + 8 + 1 + 3);
    WireReader r(bytes);
    std::uint8_t a = 0;
    std::uint16_t b = 0;
    std::uint64_t c = 0;
    std::string s;
    REQUIRE(r.u8(a));
    REQUIRE(r.u16(b));
    REQUIRE(r.u64(c));
    REQUIRE(r.text8(s));
    CHECK(a == 1);
    CHECK(b == 0x0203);
    CHECK(c == 0x0102030405060708ULL);
    CHECK(s == "abc");
    CHECK(r.at_end());
    CHECK_FALSE(r.u8(a));
    WireReader short_reader(ByteView(bytes).first(12));
    REQUIRE(short_reader.u8(a));
    REQUIRE(short_reader.u16(b));
    REQUIRE(short_reader.u64(c));
    CHECK_FALSE(short_reader.text8(s));  // length 3 claimed, 0 present
}
