#include "protocol/frame.h"

#include <catch2/catch.hpp>
#include <random>

#include "protocol/reason.h"

using namespace aegis;
using namespace aegis::protocol;

namespace {

std::vector<Frame> one_of_each() {
    std::vector<Frame> frames;
    const Bytes batch{1, 2, 3, 4, 5};
    frames.push_back(Frame{FrameType::publish, 7, 0, Reason::none, {}, {}, batch});
    frames.push_back(Frame{FrameType::subscribe, 8, 0, Reason::none, {}, {"backend.host42.>", "backend.all.*"}, {}});
    frames.push_back(Frame{FrameType::unsubscribe, 9, 0, Reason::none, {}, {"backend.all.*"}, {}});
    frames.push_back(Frame{FrameType::deliver_ack, 0, 0x0102030405060708ULL, Reason::none, {}, {}, {}});
    frames.push_back(Frame{FrameType::puback, 7, 3, Reason::none, {}, {}, {}});
    frames.push_back(Frame{FrameType::suback, 8, 0, Reason::none, {}, {}, {}});
    frames.push_back(Frame{FrameType::deliver, 0, 99, Reason::none, {}, {}, batch});
    frames.push_back(Frame{FrameType::error, 7, 0, Reason::access_denied, "agent.other.> is not yours", {}, {}});
    frames.push_back(Frame{FrameType::goodbye, 0, 0, Reason::shutting_down, "restart", {}, {}});
    return frames;
}

bool same(const Frame& a, const Frame& b) {
    return a.type == b.type && a.request_id == b.request_id && a.sequence == b.sequence && a.reason == b.reason &&
           a.text == b.text && a.patterns == b.patterns && a.batch == b.batch;
}

void expect_malformed(ByteView bytes) {
    auto decoded = decode_frame(bytes);
    REQUIRE_FALSE(decoded.ok());
    CHECK(reason_of(decoded.error()) == Reason::malformed);
}

}  // namespace

TEST_CASE("every frame type round-trips", "[frame]") {
    for (const auto& frame : one_of_each()) {
        const auto wire = encode_frame(frame);
        CHECK(wire[0] == static_cast<std::uint8_t>(frame.type));
        auto decoded = decode_frame(wire);
        INFO("type " << int(frame.type));
        REQUIRE(decoded.ok());
        CHECK(same(*decoded, frame));
    }
}

TEST_CASE("frames have the documented layout", "[frame]") {
    CHECK(encode_frame(Frame{FrameType::puback, 0x01020304, 5, Reason::none, {}, {}, {}}) ==
          Bytes{0x11, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5});
    CHECK(encode_frame(Frame{FrameType::subscribe, 1, 0, Reason::none, {}, {"a.>"}, {}}) ==
          Bytes{0x02, 0, 0, 0, 1, 0, 1, 0, 3, 'a', '.', '>'});
    CHECK(encode_frame(Frame{FrameType::goodbye, 0, 0, Reason::busy, "x", {}, {}}) == Bytes{0x15, 0, 10, 0, 1, 'x'});
    CHECK(encode_frame(Frame{FrameType::publish, 2, 0, Reason::none, {}, {}, Bytes{9}}) ==
          Bytes{0x01, 0, 0, 0, 2, 0, 0, 0, 1, 9});
}

TEST_CASE("truncated or extended frames are rejected", "[frame]") {
    for (const auto& frame : one_of_each()) {
        const auto wire = encode_frame(frame);
        for (std::size_t length = 0; length < wire.size(); ++length) {
            INFO("type " << int(frame.type) << " cut to " << length);
            expect_malformed(ByteView(wire).first(length));
        }
        auto longer = wire;
        longer.push_back(0);
        expect_malformed(longer);
    }
}

TEST_CASE("unknown frame types are rejected", "[frame]") {
    for (const std::uint8_t type : {0x00, 0x05, 0x10, 0x16, 0x7F, 0xFF}) {
        INFO("type " << int(type));
        expect_malformed(Bytes{type, 0, 0, 0, 0, 0, 0, 0, 0});
    }
}

TEST_CASE("frames over their limits are rejected", "[frame]") {
    Frame subscribe{FrameType::subscribe, 1, 0, Reason::none, {}, {}, {}};
    subscribe.patterns.assign(kMaxPatternsPerFrame, "agent.>");
    CHECK(decode_frame(encode_frame(subscribe)).ok());
    subscribe.patterns.push_back("agent.>");
    expect_malformed(encode_frame(subscribe));

    subscribe.patterns = {};
    expect_malformed(encode_frame(subscribe));  // nothing to subscribe to
    subscribe.patterns = {""};
    expect_malformed(encode_frame(subscribe));
    subscribe.patterns = {std::string(256, 'a')};
    expect_malformed(encode_frame(subscribe));
    subscribe.patterns = {std::string(70'000, 'a')};  // longer than a u16 can frame: still refused, not misread
    expect_malformed(encode_frame(subscribe));

    expect_malformed(encode_frame(Frame{FrameType::publish, 1, 0, Reason::none, {}, {}, {}}));  // empty batch
    expect_malformed(encode_frame(Frame{FrameType::error, 1, 0, Reason::none, "no reason", {}, {}}));

    // Over-long text is cut when sent and refused when received.
    const Frame chatty{FrameType::goodbye, 0, 0, Reason::internal, std::string(5000, 'z'), {}, {}};
    auto decoded = decode_frame(encode_frame(chatty));
    REQUIRE(decoded.ok());
    CHECK(decoded->text.size() == kMaxReasonTextBytes);
    Bytes raw{0x15, 0, 15, 0x04, 0x01};
    raw.resize(raw.size() + kMaxReasonTextBytes + 1, 'z');
    expect_malformed(raw);
}

TEST_CASE("reasons a newer peer may add pass through frames", "[frame]") {
    auto decoded = decode_frame(Bytes{0x14, 0, 0, 0, 1, 0x01, 0x00, 0, 0});
    REQUIRE(decoded.ok());
    CHECK(static_cast<std::uint16_t>(decoded->reason) == 256);
    CHECK(is_permanent(decoded->reason) == false);
    CHECK(exit_code_for(decoded->reason) == ExitCode::failure);
}

TEST_CASE("random garbage never decodes into something else", "[frame]") {
    std::mt19937 rng(12345);
    std::size_t accepted = 0;
    for (int i = 0; i < 20'000; ++i) {
        Bytes garbage(rng() % 24);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(rng());
        if (!garbage.empty() && i % 2 == 0) {
            // Half the inputs start with a valid type so the bodies get exercised too.
            static constexpr std::uint8_t kTypes[] = {0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15};
            garbage[0] = kTypes[rng() % std::size(kTypes)];
        }
        auto decoded = decode_frame(garbage);
        if (!decoded) {
            CHECK(reason_of(decoded.error()) == Reason::malformed);
            continue;
        }
        // Whatever decodes is canonical: encoding it again gives the same bytes.
        CHECK(encode_frame(*decoded) == garbage);
        ++accepted;
    }
    CHECK(accepted > 0);
}
