#include "protocol/envelope.h"

#include <catch2/catch.hpp>
#include <functional>
#include <set>
#include <vector>

#include "protocol/reason.h"

using namespace aegis;
using namespace aegis::protocol;

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t byte) {
    std::array<std::uint8_t, N> out{};
    out.fill(byte);
    return out;
}

const crypto::SigningKey& origin_key() {
    static const auto key = crypto::SigningKey::from_seed(filled<32>(0x01));
    return key;
}

std::vector<Envelope> sample_messages() {
    std::vector<Envelope> messages;
    for (std::uint8_t i = 0; i < 3; ++i) {
        Envelope e;
        e.id = filled<16>(static_cast<std::uint8_t>(0x10 + i));
        e.channel = "agent.host42.status";
        e.origin = origin_key().public_key();
        e.origin_id = "host42";
        e.sequence = 100 + i;
        e.timestamp_ms = 1'700'000'000'000 + i;
        e.expires_ms = i == 0 ? 0 : 1'700'000'060'000;
        e.priority = i == 1 ? Priority::critical : Priority::normal;
        e.kind = i == 2 ? Kind::request : Kind::event;
        e.correlation = i == 2 ? filled<16>(0xCC) : MessageId{};
        e.headers = {{"content-type", "text/plain"}, {"x-trace", std::string(1, static_cast<char>('a' + i))}};
        e.payload = Bytes{'m', 's', 'g', static_cast<std::uint8_t>('0' + i)};
        messages.push_back(e);
    }
    return messages;
}

SignedBatch sample_batch(std::uint8_t format = kBatchFormatWhole) {
    return sign_batch(sample_messages(), origin_key(), format).value();
}

Reason reason_of_result(const Result<void>& result) {
    return result.ok() ? Reason::none : reason_of(result.error());
}

}  // namespace

TEST_CASE("a signed batch verifies and round-trips through its wire form", "[envelope]") {
    const auto batch = sample_batch();
    CHECK(verify_batch(batch).ok());
    const auto wire = encode_batch(batch);
    auto decoded = decode_batch(wire);
    REQUIRE(decoded.ok());
    CHECK(*decoded == batch);
    CHECK(verify_batch(*decoded).ok());
    CHECK(encode_batch(*decoded) == wire);
    // The wire form is the signing input without its label, followed by the signature.
    const auto input = signing_input(batch.messages).value();
    const std::string_view label = "aegis/1 batch";
    REQUIRE(input.size() == label.size() + wire.size() - crypto::kSignatureSize);
    CHECK(std::equal(input.begin() + static_cast<std::ptrdiff_t>(label.size()), input.end(), wire.begin()));
    CHECK(crypto::verify(origin_key().public_key(), input, batch.signature));
}

TEST_CASE("a format 2 batch signs the BLAKE2b digest of its encoding, and says so in its first byte", "[envelope]") {
    const auto batch = sample_batch(kBatchFormatDigest);
    CHECK(batch.format == kBatchFormatDigest);
    CHECK(verify_batch(batch).ok());
    const auto wire = encode_batch(batch);
    CHECK(wire[0] == kBatchFormatDigest);
    auto decoded = decode_batch(wire);
    REQUIRE(decoded.ok());
    CHECK(decoded->format == kBatchFormatDigest);
    CHECK(*decoded == batch);
    CHECK(verify_batch(*decoded).ok());
    CHECK(encode_batch(*decoded) == wire);
    // Signed: "aegis/1 batch digest" || H(B), B being the wire form without its signature.
    const Bytes body(wire.begin(), wire.end() - static_cast<std::ptrdiff_t>(crypto::kSignatureSize));
    const std::string_view label = "aegis/1 batch digest";
    Bytes input(label.begin(), label.end());
    const auto digest = crypto::blake2b(body);
    input.insert(input.end(), digest.begin(), digest.end());
    CHECK(signing_input(batch.messages, kBatchFormatDigest).value() == input);
    CHECK(crypto::verify(origin_key().public_key(), input, batch.signature));
    // The same messages in format 1 sign other bytes: neither signature passes for the other
    // format, so a batch cannot be read in the format it was not signed in.
    const auto whole = sample_batch(kBatchFormatWhole);
    CHECK(whole.messages == batch.messages);
    CHECK(whole.signature != batch.signature);
    auto relabelled = batch;
    relabelled.format = kBatchFormatWhole;
    CHECK(reason_of_result(verify_batch(relabelled)) == Reason::bad_signature);
    auto flipped = wire;
    flipped[0] = kBatchFormatWhole;
    auto read_as_whole = decode_batch(flipped);
    REQUIRE(read_as_whole.ok());
    CHECK(reason_of_result(verify_batch(*read_as_whole)) == Reason::bad_signature);
    // An unknown format is neither signed nor read.
    CHECK(reason_of(sign_batch(sample_messages(), origin_key(), 3).error()) == Reason::malformed);
}

TEST_CASE("a single message is a batch of one", "[envelope]") {
    auto messages = sample_messages();
    messages.resize(1);
    messages[0].headers.clear();
    messages[0].payload.clear();
    const auto batch = sign_batch(messages, origin_key()).value();
    CHECK(verify_batch(batch).ok());
    CHECK(decode_batch(encode_batch(batch)).value() == batch);
}

TEST_CASE("changing any field of any message breaks the batch signature", "[envelope]") {
    const auto format = GENERATE(kBatchFormatWhole, kBatchFormatDigest);
    INFO("batch format " << int(format));
    const auto batch = sample_batch(format);
    using Mutation = std::function<void(Envelope&)>;
    const std::vector<std::pair<std::string, Mutation>> mutations{
        {"id", [](Envelope& e) { e.id[7] ^= 1; }},
        {"sequence", [](Envelope& e) { ++e.sequence; }},
        {"timestamp", [](Envelope& e) { ++e.timestamp_ms; }},
        {"expiry", [](Envelope& e) { e.expires_ms += 1000; }},
        {"priority", [](Envelope& e) { e.priority = e.priority == Priority::low ? Priority::high : Priority::low; }},
        {"kind", [](Envelope& e) { e.kind = e.kind == Kind::reply ? Kind::ack : Kind::reply; }},
        {"correlation", [](Envelope& e) { e.correlation[0] ^= 0x80; }},
        {"header name", [](Envelope& e) { e.headers[0].first = "content-typf"; }},
        {"header value", [](Envelope& e) { e.headers[1].second += "x"; }},
        {"header added", [](Envelope& e) { e.headers.emplace_back("extra", ""); }},
        {"header removed", [](Envelope& e) { e.headers.pop_back(); }},
        {"headers swapped", [](Envelope& e) { std::swap(e.headers[0], e.headers[1]); }},
        {"payload byte", [](Envelope& e) { e.payload[0] ^= 1; }},
        {"payload appended", [](Envelope& e) { e.payload.push_back(0); }},
        {"payload emptied", [](Envelope& e) { e.payload.clear(); }},
    };
    for (std::size_t index = 0; index < batch.messages.size(); ++index) {
        for (const auto& [what, mutate] : mutations) {
            auto changed = batch;
            mutate(changed.messages[index]);
            INFO(what << " of message " << index);
            CHECK(reason_of_result(verify_batch(changed)) == Reason::bad_signature);
        }
    }
    // Shared fields: changing them in one message mixes the batch; in all, breaks the signature.
    const std::vector<std::pair<std::string, Mutation>> shared{
        {"channel", [](Envelope& e) { e.channel = "agent.host43.status"; }},
        {"origin id", [](Envelope& e) { e.origin_id = "host43"; }},
        {"origin", [](Envelope& e) { e.origin[0] ^= 1; }},
    };
    for (const auto& [what, mutate] : shared) {
        INFO(what);
        auto one = batch;
        mutate(one.messages[1]);
        CHECK(reason_of_result(verify_batch(one)) == Reason::malformed);
        auto all = batch;
        for (auto& message : all.messages) mutate(message);
        CHECK(reason_of_result(verify_batch(all)) == Reason::bad_signature);
    }
    // The signature covers every message and their order.
    auto dropped = batch;
    dropped.messages.pop_back();
    CHECK(reason_of_result(verify_batch(dropped)) == Reason::bad_signature);
    auto reordered = batch;
    std::swap(reordered.messages[0], reordered.messages[2]);
    CHECK(reason_of_result(verify_batch(reordered)) == Reason::bad_signature);
    auto duplicated = batch;
    duplicated.messages.push_back(duplicated.messages[0]);
    CHECK(reason_of_result(verify_batch(duplicated)) == Reason::bad_signature);
    auto bad_signature = batch;
    bad_signature.signature[10] ^= 1;
    CHECK(reason_of_result(verify_batch(bad_signature)) == Reason::bad_signature);
    auto emptied = batch;
    emptied.messages.clear();
    CHECK(reason_of_result(verify_batch(emptied)) == Reason::malformed);
}

TEST_CASE("no changed byte of an encoded batch both decodes and verifies", "[envelope]") {
    const auto format = GENERATE(kBatchFormatWhole, kBatchFormatDigest);
    INFO("batch format " << int(format));
    const auto wire = encode_batch(sample_batch(format));
    std::size_t decoded_but_refused = 0;
    for (std::size_t pos = 0; pos < wire.size(); ++pos) {
        Bytes changed = wire;
        changed[pos] ^= 0x01;
        auto decoded = decode_batch(changed);
        if (!decoded) {
            CHECK(reason_of(decoded.error()) == Reason::malformed);
            continue;
        }
        INFO("byte " << pos);
        CHECK(reason_of_result(verify_batch(*decoded)) == Reason::bad_signature);
        ++decoded_but_refused;
    }
    CHECK(decoded_but_refused > wire.size() / 2);  // most bytes are content, caught by the signature
}

TEST_CASE("truncated, extended or malformed batches are rejected", "[envelope]") {
    const auto wire = encode_batch(sample_batch());
    for (std::size_t length = 0; length < wire.size(); ++length) {
        const Bytes cut(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(length));
        auto decoded = decode_batch(cut);
        INFO("cut to " << length);
        REQUIRE_FALSE(decoded.ok());
        CHECK(reason_of(decoded.error()) == Reason::malformed);
    }
    Bytes longer = wire;
    longer.push_back(0);
    CHECK_FALSE(decode_batch(longer).ok());

    // Offsets into the first message: version(1) channel(2+19) origin(32) origin id(1+6) count(2).
    const std::size_t header = 1 + 2 + 19 + 32 + 1 + 6 + 2;
    const std::size_t priority_at = header + 16 + 8 + 8 + 8;
    REQUIRE(wire[priority_at] == static_cast<std::uint8_t>(Priority::normal));
    REQUIRE(wire[priority_at + 1] == static_cast<std::uint8_t>(Kind::event));
    auto bad = wire;
    bad[priority_at] = 4;
    CHECK_FALSE(decode_batch(bad).ok());
    bad = wire;
    bad[priority_at + 1] = 5;
    CHECK_FALSE(decode_batch(bad).ok());
    bad = wire;
    bad[0] = 3;  // unknown format version
    CHECK_FALSE(decode_batch(bad).ok());
    bad[0] = 0;
    CHECK_FALSE(decode_batch(bad).ok());
    bad = wire;
    bad[header - 2] = 0;
    bad[header - 1] = 0;  // zero messages
    CHECK_FALSE(decode_batch(bad).ok());
    CHECK_FALSE(decode_batch(Bytes{}).ok());
    CHECK_FALSE(decode_batch(Bytes(kMaxBatchBytes + 1, 0)).ok());
}

TEST_CASE("signing refuses mixed or oversized batches", "[envelope]") {
    const auto& key = origin_key();
    auto mixed_channel = sample_messages();
    mixed_channel[2].channel = "agent.host42.logs";
    auto signed_mixed = sign_batch(mixed_channel, key);
    REQUIRE_FALSE(signed_mixed.ok());
    CHECK(reason_of(signed_mixed.error()) == Reason::malformed);
    CHECK_FALSE(signing_input(mixed_channel).ok());

    auto mixed_id = sample_messages();
    mixed_id[1].origin_id = "other";
    CHECK_FALSE(sign_batch(mixed_id, key).ok());

    auto mixed_origin = sample_messages();
    mixed_origin[1].origin = crypto::SigningKey::from_seed(filled<32>(0x0F)).public_key();
    CHECK_FALSE(sign_batch(mixed_origin, key).ok());

    const auto stranger = crypto::SigningKey::from_seed(filled<32>(0x0E));
    CHECK_FALSE(sign_batch(sample_messages(), stranger).ok());  // origin is not the signer

    CHECK_FALSE(sign_batch({}, key).ok());

    auto no_channel = sample_messages();
    for (auto& m : no_channel) m.channel.clear();
    CHECK_FALSE(sign_batch(no_channel, key).ok());
    auto long_channel = sample_messages();
    for (auto& m : long_channel) m.channel = std::string(kMaxChannelBytes + 1, 'a');
    CHECK_FALSE(sign_batch(long_channel, key).ok());

    auto many_headers = sample_messages();
    for (std::size_t i = 0; i < kMaxHeaders; ++i) many_headers[0].headers.emplace_back("h", "v");
    CHECK_FALSE(sign_batch(many_headers, key).ok());
    auto empty_header = sample_messages();
    empty_header[0].headers.emplace_back("", "v");
    CHECK_FALSE(sign_batch(empty_header, key).ok());
    auto long_value = sample_messages();
    long_value[0].headers.emplace_back("big", std::string(kMaxHeaderValueBytes + 1, 'v'));
    CHECK_FALSE(sign_batch(long_value, key).ok());

    auto bad_priority = sample_messages();
    bad_priority[0].priority = static_cast<Priority>(7);
    CHECK_FALSE(sign_batch(bad_priority, key).ok());
    auto bad_kind = sample_messages();
    bad_kind[0].kind = static_cast<Kind>(9);
    CHECK_FALSE(sign_batch(bad_kind, key).ok());

    auto big = sample_messages();
    big.resize(1);
    big[0].payload.assign(kMaxPayloadBytes + 1, 0);
    auto too_big = sign_batch(big, key);
    REQUIRE_FALSE(too_big.ok());
    CHECK(reason_of(too_big.error()) == Reason::too_large);
    big[0].payload.resize(kMaxPayloadBytes);
    auto largest = sign_batch(big, key);
    REQUIRE(largest.ok());
    CHECK(decode_batch(encode_batch(*largest)).ok());

    std::vector<Envelope> crowd(kMaxBatchMessages + 1, sample_messages()[0]);
    auto crowded = sign_batch(crowd, key);
    REQUIRE_FALSE(crowded.ok());
    CHECK(reason_of(crowded.error()) == Reason::too_large);
    crowd.pop_back();
    auto full = sign_batch(crowd, key);
    REQUIRE(full.ok());
    CHECK(verify_batch(decode_batch(encode_batch(*full)).value()).ok());
}

TEST_CASE("priorities and kinds have names", "[envelope]") {
    for (const auto p : {Priority::critical, Priority::high, Priority::normal, Priority::low}) {
        CHECK(parse_priority(to_string(p)) == p);
    }
    CHECK_FALSE(parse_priority("urgent").has_value());
    CHECK(to_string(Kind::heartbeat) == "heartbeat");
    CHECK(to_string(Kind::request) == "request");
}

TEST_CASE("message ids are random within a millisecond", "[envelope]") {
    std::set<MessageId> ids;
    for (int i = 0; i < 100; ++i) ids.insert(new_message_id(1731000000000));
    CHECK(ids.size() == 100);
}

TEST_CASE("message ids are UUIDv7: time first, so later ids sort later", "[envelope]") {
    const auto id = new_message_id(0x0123456789ab);
    CHECK(std::vector<std::uint8_t>(id.begin(), id.begin() + 6) ==
          std::vector<std::uint8_t>{0x01, 0x23, 0x45, 0x67, 0x89, 0xab});
    CHECK((id[6] & 0xf0) == 0x70);  // version 7
    CHECK((id[8] & 0xc0) == 0x80);  // RFC 9562 variant
    for (std::uint64_t ms = 1731000000000; ms < 1731000000100; ++ms) CHECK(new_message_id(ms) < new_message_id(ms + 1));
}

TEST_CASE("the largest payload with its envelope fits one batch; encoded_message_bytes is exact", "[envelope]") {
    auto messages = sample_messages();
    messages.resize(1);
    auto& message = messages.front();
    message.channel = "agent." + std::string(kMaxChannelBytes - 6, 'c');
    message.origin_id = std::string(kMaxOriginIdBytes, 'o');
    message.headers.clear();
    message.payload.assign(kMaxPayloadBytes, 0x5a);
    REQUIRE(fits_one_batch(message.headers, message.payload.size()));
    auto largest = sign_batch(messages, origin_key());
    REQUIRE(largest.ok());
    CHECK(encode_batch(*largest).size() == kMaxBatchFixedBytes + encoded_message_bytes({}, kMaxPayloadBytes));
    CHECK(encode_batch(*largest).size() <= kMaxBatchBytes);

    // Headers that take the largest payload past the batch limit are told apart before signing.
    message.headers.assign(kMaxHeaders, {"k", std::string(kMaxHeaderValueBytes, 'v')});
    CHECK_FALSE(fits_one_batch(message.headers, message.payload.size()));
    CHECK_FALSE(sign_batch(messages, origin_key()).ok());
    message.payload.resize(1024);
    REQUIRE(fits_one_batch(message.headers, message.payload.size()));
    auto with_headers = sign_batch(messages, origin_key());
    REQUIRE(with_headers.ok());
    CHECK(encode_batch(*with_headers).size() ==
          kMaxBatchFixedBytes + encoded_message_bytes(message.headers, message.payload.size()));
}
