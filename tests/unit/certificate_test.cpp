// Certificates of an operator CA (PROTOCOL.md §2.1): the §12 vector, refusals, validity windows.

#include "identity/certificate.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "identity/keyfile.h"
#include "protocol/handshake.h"
#include "protocol/reason.h"

using namespace aegis;
using namespace aegis::identity;

namespace {

crypto::SigningKey key_of(std::uint8_t byte) {
    std::array<std::uint8_t, crypto::kSeedSize> seed{};
    seed.fill(byte);
    return crypto::SigningKey::from_seed(seed);
}

Bytes unhex(const std::string& text) {
    return crypto::hex_decode(text).value();
}

const std::string kCaPub = "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618";
const std::string kCertificate =
    "61656769732f312063657274696669636174658a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c01066"
    "86f73743432000000000000002a000000006553f10000000000673524800e6167656e742e686f737434322e3e00fd1724385aa0c75b"
    "64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618144c8c31b330e2401e99e4c7d74c17189641fdfb8b706c04fc257eafc7"
    "e2e913d1ac3c866b532cc6a1e507b71b9fa70972d11a3193a2ad2604a66ada4b99f10f";
const std::string kCertificateLine =
    "aegis-ed25519-cert "
    "YWVnaXMvMSBjZXJ0aWZpY2F0ZYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29cAQZob3N0NDIAAAAAAAAAKgAAAABlU/"
    "EAAAAAAGc1JIAOYWdlbnQuaG9zdDQyLj4A/RckOFqgx1tk+3jNYC+h2ZH96/drE8WO1wLqyDXp9hgUTIwxszDiQB6Z5MfXTBcYlkH9+"
    "4twbAT8JX6vx+LpE9GsPIZrUyzGoeUHtxufpwly0Roxk6KtJgSmatpLmfEP host42";

Certificate vector_fields() {
    Certificate c;
    c.key = key_of(0x01).public_key();
    c.role = CertificateRole::agent;
    c.id = "host42";
    c.serial = 42;
    c.valid_after = 1'700'000'000;
    c.valid_before = 1'731'536'000;
    c.publish_narrowing = "agent.host42.>";
    return c;
}

std::string strip_whitespace(std::string text) {
    text.erase(std::remove_if(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; }),
               text.end());
    return text;
}

}  // namespace

TEST_CASE("a certificate signs to the bytes of PROTOCOL.md §12", "[certificate][vectors]") {
    const auto ca = key_of(0x09);
    CHECK(crypto::hex_encode(ca.public_key()) == kCaPub);
    const auto signed_certificate = sign_certificate(vector_fields(), ca);
    CHECK(crypto::hex_encode(encode_certificate(signed_certificate)) == kCertificate);
    CHECK(format_certificate_line(signed_certificate, "host42") == kCertificateLine);
    REQUIRE(check_certificate_fields(signed_certificate));
}

TEST_CASE("the §12 certificate decodes to its fields", "[certificate][vectors]") {
    const auto parsed = parse_certificate_line(kCertificateLine);
    REQUIRE(parsed);
    const auto& c = parsed->certificate;
    CHECK(parsed->comment == "host42");
    CHECK(c.key == key_of(0x01).public_key());
    CHECK(c.ca_key == key_of(0x09).public_key());
    CHECK(c.role == CertificateRole::agent);
    CHECK(c.id == "host42");
    CHECK(c.serial == 42);
    CHECK(c.valid_after == 1'700'000'000);
    CHECK(c.valid_before == 1'731'536'000);
    CHECK(c.publish_narrowing == std::optional<std::string>("agent.host42.>"));
    CHECK_FALSE(c.subscribe_narrowing);
}

TEST_CASE("PROTOCOL.md carries the certificate vector", "[certificate][vectors]") {
    std::ifstream file(std::string(AEGIS_SOURCE_DIR) + "/PROTOCOL.md");
    REQUIRE(file.good());
    std::stringstream text;
    text << file.rdbuf();
    const auto doc = strip_whitespace(text.str());
    CHECK(doc.find(kCaPub) != std::string::npos);
    CHECK(doc.find(kCertificate) != std::string::npos);
    CHECK(doc.find(strip_whitespace(kCertificateLine)) != std::string::npos);
}

TEST_CASE("every changed byte of a certificate is refused", "[certificate]") {
    const auto bytes = unhex(kCertificate);
    REQUIRE(decode_certificate(bytes));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        auto altered = bytes;
        altered[i] ^= 0x01;
        INFO("byte " << i);
        const auto decoded = decode_certificate(altered);
        REQUIRE_FALSE(decoded);
        CHECK(decoded.error().exit == ExitCode::bad_input);
    }
}

TEST_CASE("a certificate that is short, long or malformed is refused with the reason", "[certificate]") {
    const auto bytes = unhex(kCertificate);
    auto shorter = bytes;
    shorter.pop_back();
    CHECK_THAT(decode_certificate(shorter).error().message, Catch::Contains("truncated"));
    auto longer = bytes;
    longer.push_back(0);
    CHECK_THAT(decode_certificate(longer).error().message, Catch::Contains("after its signature"));
    CHECK_THAT(decode_certificate(Bytes(10, 0x61)).error().message, Catch::Contains("not an Aegis certificate"));

    const auto ca = key_of(0x09);
    auto bad_id = vector_fields();
    bad_id.id = "has space";
    CHECK_FALSE(check_certificate_fields(bad_id));
    auto empty_window = vector_fields();
    empty_window.valid_before = empty_window.valid_after;
    CHECK_FALSE(check_certificate_fields(empty_window));
    // Signed anyway (a CA bypassing the checks): the decoder still refuses it.
    CHECK_THAT(decode_certificate(encode_certificate(sign_certificate(empty_window, ca))).error().message,
               Catch::Contains("validity window is empty"));
    auto bad_pattern = vector_fields();
    bad_pattern.subscribe_narrowing = "agent..x";
    CHECK_THAT(decode_certificate(encode_certificate(sign_certificate(bad_pattern, ca))).error().message,
               Catch::Contains("sub="));

    CHECK_THAT(parse_certificate_line("aegis-ed25519 iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w= x").error().message,
               Catch::Contains("is a public key, not a certificate"));
    CHECK_THAT(parse_certificate_line("aegis-ed25519-cert !!!").error().message, Catch::Contains("base64"));
}

TEST_CASE("validity is judged with the clock-skew tolerance at both ends", "[certificate]") {
    auto c = vector_fields();
    CHECK(validity_at(c, 1'700'000'000, 0) == Validity::valid);
    CHECK(validity_at(c, 1'699'999'999, 0) == Validity::not_yet_valid);
    CHECK(validity_at(c, 1'699'999'880, 120) == Validity::valid);
    CHECK(validity_at(c, 1'699'999'879, 120) == Validity::not_yet_valid);
    CHECK(validity_at(c, 1'731'535'999, 0) == Validity::valid);
    CHECK(validity_at(c, 1'731'536'000, 0) == Validity::expired);
    CHECK(validity_at(c, 1'731'536'119, 120) == Validity::valid);
    CHECK(validity_at(c, 1'731'536'120, 120) == Validity::expired);
    c.valid_after = 0;
    c.valid_before = kForever;
    CHECK(validity_at(c, 0, 120) == Validity::valid);
    CHECK(validity_at(c, kForever - 1, 120) == Validity::valid);
    CHECK(format_validity(c) == "from always to forever");
    CHECK(format_time(1'700'000'000) == "2023-11-14T22:13:20Z");
}

TEST_CASE("a certificate out of its window is named with its dates and whose time judged it", "[certificate]") {
    auto c = vector_fields();
    CHECK_FALSE(validity_problem(c, 1'700'000'000, 0, "the gateway's time").has_value());
    const auto expired = validity_problem(c, 1'731'536'120, 120, "the gateway's time");
    REQUIRE(expired.has_value());
    CHECK(*expired == fmt::format("certificate serial {} of id {} is expired: valid {}; the gateway's time is "
                                  "2024-11-13T22:15:20Z",
                                  c.serial, c.id, format_validity(c)));
    const auto early = validity_problem(c, 1'699'999'879, 120, "this host's time");
    REQUIRE(early.has_value());
    CHECK_THAT(*early, Catch::Contains("is not yet valid: valid from 2023-11-14T22:13:20Z") &&
                           Catch::Contains("; this host's time is 2023-11-14T22:11:19Z"));
}

TEST_CASE("the certificate file sits beside the key as KEY-cert.pub", "[certificate]") {
    CHECK(certificate_path("/k/id_ed25519") == std::filesystem::path("/k/id_ed25519-cert.pub"));
    CHECK(certificate_path("/k/id_ed25519.pub") == std::filesystem::path("/k/id_ed25519-cert.pub"));
    CHECK(certificate_path("host.pub") == std::filesystem::path("host-cert.pub"));
}

namespace {

// One handshake where the client sends `certificate`; the server's claim, or its error.
Result<protocol::ClientClaim> claim_with(const Bytes& certificate) {
    const auto client_key = key_of(0x01);
    const auto server_key = key_of(0x02);
    protocol::ClientOptions options;
    options.identity = &client_key;
    options.pinned_server_keys = {server_key.public_key()};
    options.server_name = "gateway.example";
    options.certificate = certificate;
    protocol::ClientHandshake client(options);
    protocol::ReplayCache cache;
    protocol::ServerHandshake server(protocol::ServerOptions{&server_key, protocol::kDefaultClockSkewMs}, cache);
    const std::uint64_t now = 1'700'000'000'000;
    auto hello = client.start(now);
    REQUIRE_FALSE(hello.empty());
    auto server_hello = server.on_client_hello(hello, now);
    REQUIRE(server_hello);
    auto auth = client.on_server_hello(*server_hello);
    REQUIRE(auth);
    return server.on_client_auth(*auth);
}

}  // namespace

TEST_CASE("ClientAuth carries a certificate after the signature, or nothing", "[certificate][handshake]") {
    const auto without = claim_with({});
    REQUIRE(without);
    CHECK(without->certificate.empty());
    const auto certificate = unhex(kCertificate);
    const auto with = claim_with(certificate);
    REQUIRE(with);
    CHECK(with->certificate == certificate);
    CHECK(with->key == key_of(0x01).public_key());
    // The longest certificate fits (the handshake's 2048-byte cap included); one byte more is
    // refused by the client before anything is sent.
    CHECK(claim_with(Bytes(protocol::kMaxCertificateBytes, 0x61)));
    const auto client_key = key_of(0x01);
    protocol::ClientOptions options;
    options.identity = &client_key;
    options.certificate = Bytes(protocol::kMaxCertificateBytes + 1, 0x61);
    protocol::ClientHandshake client(options);
    CHECK(client.start(1'700'000'000'000).empty());
}

TEST_CASE("the authorized file trusts a CA's certificates and refuses the rest with reasons", "[certificate]") {
    const auto ca = key_of(0x09);
    const auto stranger_ca = key_of(0x0a);
    const auto host = key_of(0x01).public_key();
    const auto listed = key_of(0x0b).public_key();
    const std::string text = "# fleet\n@cert-authority " + format_public_key_line(ca.public_key(), "fleet CA") +
                             "\nrole=backend,id=soc " + format_public_key_line(listed, "soc") + "\n";
    const auto keys = gateway::parse_authorized_keys(text, "authorized");
    CHECK(keys.warnings.empty());
    CHECK(keys.authorities() == 1);
    CHECK(keys.size() == 1);
    const std::uint64_t now = 1'710'000'000;

    const auto certificate = encode_certificate(sign_certificate(vector_fields(), ca));
    const auto admitted = keys.authorize(host, certificate, now, 120);
    REQUIRE(admitted);
    CHECK(admitted->id == "host42");
    CHECK(admitted->role == Role::agent);
    CHECK(admitted->publish_narrowing == std::optional<std::string>("agent.host42.>"));
    REQUIRE(admitted->certificate);
    CHECK(admitted->certificate->serial == 42);

    // A listed key is its line, whatever certificate it brings.
    const auto by_line = keys.authorize(listed, certificate, now, 120);
    REQUIRE(by_line);
    CHECK(by_line->id == "soc");
    CHECK_FALSE(by_line->certificate);

    const auto reason = [&](const crypto::PublicKey& key, const Bytes& cert, std::uint64_t at) {
        const auto result = keys.authorize(key, cert, at, 120);
        REQUIRE_FALSE(result);
        INFO(result.error().message);
        return protocol::reason_of(result.error());
    };
    CHECK(reason(host, {}, now) == protocol::Reason::unknown_identity);
    CHECK(reason(key_of(0x0c).public_key(), certificate, now) == protocol::Reason::unknown_identity);
    CHECK(reason(host, encode_certificate(sign_certificate(vector_fields(), stranger_ca)), now) ==
          protocol::Reason::unknown_identity);
    auto tampered = certificate;
    tampered[30] ^= 1;
    CHECK(reason(host, tampered, now) == protocol::Reason::unknown_identity);
    CHECK(reason(host, certificate, 1'731'536'120) == protocol::Reason::certificate_expired);
    CHECK(reason(host, certificate, 1'699'999'000) == protocol::Reason::certificate_expired);
    const auto expired = keys.authorize(host, certificate, 1'731'536'120, 120);
    CHECK_THAT(expired.error().message,
               Catch::Contains("certificate serial 42 of id host42 is expired: valid from 2023-11-14T22:13:20Z to "
                               "2024-11-13T22:13:20Z; the gateway's time is 2024-11-13T22:15:20Z"));
    const auto untrusted =
        keys.authorize(host, encode_certificate(sign_certificate(vector_fields(), stranger_ca)), now, 120);
    CHECK_THAT(untrusted.error().message, Catch::Contains(crypto::fingerprint(stranger_ca.public_key())));

    // A malformed CA line is an error with its number: the file is not applied.
    const auto bad = gateway::parse_authorized_keys("@cert-authority aegis-ed25519 !!!\n@cert-authorityx\n", "auth");
    CHECK(bad.authorities() == 0);
    CHECK(bad.warnings.empty());
    REQUIRE(bad.errors.size() == 2);
    CHECK_THAT(bad.errors[0], Catch::Contains("auth:1:"));
    CHECK_THAT(bad.errors[1], Catch::Contains("auth:2:"));
}

namespace {

struct ServerHelloResult {
    Bytes hello;
    Bytes server_hello;
    Bytes server_certificate;
};

// ClientHello and ServerHello between a client that does or does not ask for the server's
// certificate and a server that does or does not have one.
ServerHelloResult server_hello_with(bool ask, const Bytes& server_certificate) {
    const auto client_key = key_of(0x01);
    const auto server_key = key_of(0x02);
    protocol::ClientOptions options;
    options.identity = &client_key;
    options.server_name = "gateway.example";
    options.want_server_certificate = ask;
    protocol::ClientHandshake client(options);
    protocol::ReplayCache cache;
    protocol::ServerHandshake server(
        protocol::ServerOptions{&server_key, protocol::kDefaultClockSkewMs, server_certificate}, cache);
    const std::uint64_t now = 1'700'000'000'000;
    ServerHelloResult out;
    out.hello = client.start(now);
    auto reply = server.on_client_hello(out.hello, now);
    REQUIRE(reply);
    out.server_hello = *reply;
    REQUIRE(client.on_server_hello(out.server_hello));
    CHECK(client.server_key() == server_key.public_key());
    out.server_certificate = client.server_certificate();
    return out;
}

}  // namespace

TEST_CASE("a server certificate goes only to a client that asks for it", "[certificate][handshake]") {
    auto fields = vector_fields();
    fields.key = key_of(0x02).public_key();
    fields.role = CertificateRole::gateway;
    fields.id = "gw1";
    const auto certificate = encode_certificate(sign_certificate(fields, key_of(0x09)));

    const auto asked = server_hello_with(true, certificate);
    CHECK(asked.server_certificate == certificate);
    CHECK(asked.hello.back() == protocol::kWantServerCertificate);
    // Original forms: the server answers a client that does not ask with the 112-byte proof.
    const auto not_asked = server_hello_with(false, certificate);
    CHECK(not_asked.server_certificate.empty());
    CHECK(not_asked.server_hello.size() == 66 + 4 + 112);
    CHECK(server_hello_with(false, {}).hello.size() == not_asked.hello.size());
    CHECK(asked.hello.size() == not_asked.hello.size() + 1);
    // Asked, but the server has none: the original 112 bytes, and the caller finds no certificate.
    const auto none = server_hello_with(true, {});
    CHECK(none.server_certificate.empty());
    CHECK(none.server_hello.size() == 66 + 4 + 112);
}

TEST_CASE("a client that did not ask refuses a ServerHello carrying a certificate", "[certificate][handshake]") {
    auto fields = vector_fields();
    fields.key = key_of(0x02).public_key();
    fields.role = CertificateRole::gateway;
    const auto certificate = encode_certificate(sign_certificate(fields, key_of(0x09)));
    const auto asked = server_hello_with(true, certificate);
    // A client of the original form, given that ServerHello, finds the proof too long.
    const auto client_key = key_of(0x01);
    protocol::ClientOptions options;
    options.identity = &client_key;
    options.server_name = "gateway.example";
    protocol::ClientHandshake client(options);
    (void)client.start(1'700'000'000'000);
    const auto refused = client.on_server_hello(asked.server_hello);
    REQUIRE_FALSE(refused);
    CHECK(protocol::reason_of(refused.error()) == protocol::Reason::malformed);
}

TEST_CASE("reason 20 certificate_expired is a refusal, not permanent", "[certificate]") {
    CHECK(protocol::exit_code_for(protocol::Reason::certificate_expired) == ExitCode::refused);
    CHECK_FALSE(protocol::is_permanent(protocol::Reason::certificate_expired));
    CHECK(protocol::name(protocol::Reason::certificate_expired) == "certificate_expired");
}
