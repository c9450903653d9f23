// The local socket protocol without sockets: framing, typed errors, request parsing, events.

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/wire.h"
#include "ipc/codec.h"
#include "ipc/messages.h"
#include "protocol/reason.h"

namespace ipc = aegis::ipc;
using aegis::Bytes;
using aegis::ByteView;
using nlohmann::json;

namespace {

[[nodiscard]] Bytes raw_frame(std::uint32_t total, std::uint32_t header_length, std::string_view rest) {
    aegis::WireWriter writer;
    writer.u32(total);
    writer.u32(header_length);
    writer.raw(aegis::as_bytes(rest));
    return writer.take();
}

[[nodiscard]] ipc::Frame frame_of(const ipc::Decoded& decoded) {
    REQUIRE(std::holds_alternative<ipc::Frame>(decoded));
    return std::get<ipc::Frame>(decoded);
}

[[nodiscard]] ipc::LocalReason reason_of(const ipc::Decoded& decoded) {
    REQUIRE(std::holds_alternative<ipc::LocalError>(decoded));
    return std::get<ipc::LocalError>(decoded).reason;
}

[[nodiscard]] ipc::LocalReason request_error(const json& header) {
    auto parsed = ipc::parse_request(header);
    REQUIRE(std::holds_alternative<ipc::RequestError>(parsed));
    return std::get<ipc::RequestError>(parsed).error.reason;
}

[[nodiscard]] ipc::Request request(const json& header) {
    auto parsed = ipc::parse_request(header);
    REQUIRE(std::holds_alternative<ipc::Request>(parsed));
    return std::get<ipc::Request>(std::move(parsed));
}

}  // namespace

TEST_CASE("ipc: a frame is total length, header length, JSON header, raw payload", "[ipc]") {
    const json header{{"op", "publish"}, {"id", 7}};
    const Bytes payload{0x00, 0xff, '\n', 0x00, 0x80};
    const auto bytes = ipc::encode_frame(header, payload);
    const std::string text = header.dump();
    REQUIRE(bytes.size() == 8 + text.size() + payload.size());
    aegis::WireReader reader(bytes);
    std::uint32_t total = 0;
    std::uint32_t header_length = 0;
    REQUIRE(reader.u32(total));
    REQUIRE(reader.u32(header_length));
    CHECK(total == 4 + text.size() + payload.size());
    CHECK(header_length == text.size());

    const auto& frame = frame_of(ipc::decode_frame(bytes));
    CHECK(frame.header == header);
    CHECK(frame.payload == payload);  // binary safe: NUL and high bytes unchanged
}

TEST_CASE("ipc: the reader reassembles frames split anywhere and splits frames sent together", "[ipc]") {
    Bytes stream;
    for (int i = 0; i < 3; ++i) {
        const Bytes payload(static_cast<std::size_t>(i * 1000), static_cast<std::uint8_t>(i));
        const auto frame = ipc::encode_frame(json{{"n", i}}, payload);
        stream.insert(stream.end(), frame.begin(), frame.end());
    }
    ipc::FrameReader reader;
    std::vector<ipc::Frame> frames;
    for (const auto byte : stream) {
        reader.feed(ByteView(&byte, 1));
        for (;;) {
            const bool ready = reader.ready();  // says what next() will do, byte by byte
            auto decoded = reader.next();
            REQUIRE(ready == !std::holds_alternative<std::monostate>(decoded));
            if (!ready) break;
            frames.push_back(frame_of(decoded));
        }
    }
    REQUIRE(frames.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(frames[static_cast<std::size_t>(i)].header["n"] == i);
        CHECK(frames[static_cast<std::size_t>(i)].payload.size() == static_cast<std::size_t>(i * 1000));
    }
    CHECK(reader.buffered() == 0);

    ipc::FrameReader together;
    together.feed(stream);
    for (int i = 0; i < 3; ++i) CHECK(frame_of(together.next()).header["n"] == i);
    CHECK(std::holds_alternative<std::monostate>(together.next()));
}

TEST_CASE("ipc: an empty payload and an empty-object header are a valid frame", "[ipc]") {
    const auto& frame = frame_of(ipc::decode_frame(ipc::encode_frame(json::object())));
    CHECK(frame.header.empty());
    CHECK(frame.payload.empty());
}

TEST_CASE("ipc: truncated frames are bad_frame, not a hang or a crash", "[ipc]") {
    const auto whole = ipc::encode_frame(json{{"op", "status"}}, aegis::as_bytes("payload"));
    for (std::size_t cut = 0; cut < whole.size(); ++cut) {
        const ByteView part(whole.data(), cut);
        CHECK(reason_of(ipc::decode_frame(part)) == ipc::LocalReason::bad_frame);
        ipc::FrameReader reader;
        reader.feed(part);
        CHECK(std::holds_alternative<std::monostate>(reader.next()));  // a stream just waits for more
        CHECK(reader.buffered() == cut);
    }
    auto padded = whole;
    padded.push_back(0);
    CHECK(reason_of(ipc::decode_frame(padded)) == ipc::LocalReason::bad_frame);
}

TEST_CASE("ipc: an oversized length prefix is refused before any payload is read", "[ipc]") {
    ipc::FrameReader reader;
    reader.feed(raw_frame(0xFFFFFFFFu, 2, "{}"));
    CHECK(reader.ready());  // an error is ready at once, with no payload behind it
    CHECK(reason_of(reader.next()) == ipc::LocalReason::frame_too_large);
    CHECK(reader.ready());
    CHECK(reader.broken());
    // Broken stays broken: the frame boundary is lost, a valid frame after it is not trusted.
    reader.feed(ipc::encode_frame(json{{"op", "status"}}));
    CHECK(reason_of(reader.next()) == ipc::LocalReason::frame_too_large);

    CHECK(reason_of(ipc::decode_frame(raw_frame(ipc::kMaxFrameBytes + 1, 2, "{}"))) ==
          ipc::LocalReason::frame_too_large);
    ipc::FrameReader small(64);
    small.feed(ipc::encode_frame(json{{"pad", std::string(100, 'x')}}));
    CHECK(reason_of(small.next()) == ipc::LocalReason::frame_too_large);
}

TEST_CASE("ipc: inconsistent length prefixes are bad_frame and break the stream", "[ipc]") {
    CHECK(reason_of(ipc::decode_frame(raw_frame(10, 7, "{}"))) == ipc::LocalReason::bad_frame);  // 7 > 10 - 4
    CHECK(reason_of(ipc::decode_frame(raw_frame(3, 0, ""))) == ipc::LocalReason::bad_frame);     // shorter than a field
    ipc::FrameReader reader;
    reader.feed(raw_frame(1000, 2000, ""));  // refused from the prefixes alone
    CHECK(reader.ready());
    CHECK(reason_of(reader.next()) == ipc::LocalReason::bad_frame);
    CHECK(ipc::breaks_framing(ipc::LocalReason::bad_frame));
    CHECK(ipc::breaks_framing(ipc::LocalReason::frame_too_large));
}

TEST_CASE("ipc: garbage JSON costs one frame, and the next frame still reads", "[ipc]") {
    ipc::FrameReader reader;
    reader.feed(raw_frame(4 + 9, 9, "{not json"));
    reader.feed(raw_frame(4 + 7, 7, "[1,2,3]"));
    reader.feed(ipc::encode_frame(json{{"op", "status"}}));
    CHECK(reason_of(reader.next()) == ipc::LocalReason::bad_json);
    CHECK(reason_of(reader.next()) == ipc::LocalReason::bad_request);
    CHECK(!reader.broken());
    CHECK(frame_of(reader.next()).header["op"] == "status");
    CHECK_FALSE(ipc::breaks_framing(ipc::LocalReason::bad_json));
}

TEST_CASE("ipc: requests parse into typed values and keep their id", "[ipc]") {
    const auto hello = request(json{{"op", "hello"}, {"v", 1}, {"id", "a"}, {"client", "aegis-send"}});
    CHECK(hello.id == "a");
    REQUIRE(std::holds_alternative<ipc::HelloRequest>(hello.body));
    CHECK(std::get<ipc::HelloRequest>(hello.body).version == 1);
    CHECK(std::get<ipc::HelloRequest>(hello.body).client == "aegis-send");

    const auto publish = request(json{{"op", "publish"},
                                      {"id", 3},
                                      {"channel", "agent.host42.anomalies"},
                                      {"priority", "critical"},
                                      {"ttl_ms", 5000},
                                      {"headers", json::array({json::array({"b", "2"}), json::array({"a", "1"})})},
                                      {"kind", "request"},
                                      {"correlation", std::string(32, 'a')},
                                      {"wait_ack", true}});
    REQUIRE(std::holds_alternative<ipc::PublishRequest>(publish.body));
    const auto& p = std::get<ipc::PublishRequest>(publish.body);
    CHECK(p.channel == "agent.host42.anomalies");
    CHECK(p.priority == aegis::protocol::Priority::critical);
    CHECK(p.ttl_ms == 5000);
    REQUIRE(p.headers.size() == 2);
    CHECK(p.headers[0].first == "b");  // order kept
    CHECK(p.kind == aegis::protocol::Kind::request);
    REQUIRE(p.correlation.has_value());
    CHECK((*p.correlation)[0] == 0xaa);
    CHECK(p.wait_ack);

    const auto subscribe =
        request(json{{"op", "subscribe"}, {"patterns", json::array({"backend.host42.>", "backend.all.>"})}});
    REQUIRE(std::holds_alternative<ipc::SubscribeRequest>(subscribe.body));
    CHECK(std::get<ipc::SubscribeRequest>(subscribe.body).patterns.size() == 2);
    CHECK(subscribe.id.is_null());

    CHECK(std::holds_alternative<ipc::StatusRequest>(request(json{{"op", "status"}}).body));
    CHECK(std::holds_alternative<ipc::StopRequest>(request(json{{"op", "stop"}}).body));
}

TEST_CASE("ipc: the typed request builders parse back to what they were built from", "[ipc]") {
    ipc::PublishRequest built;
    built.channel = "backend.host42.policies";
    built.priority = aegis::protocol::Priority::low;
    built.headers = {{"content-type", "text/plain"}};
    built.wait_ack = true;
    const auto parsed = request(ipc::to_header(built));
    const auto& p = std::get<ipc::PublishRequest>(parsed.body);
    CHECK(p.channel == built.channel);
    CHECK(p.priority == built.priority);
    CHECK(p.headers == built.headers);
    CHECK(p.wait_ack);
    CHECK(std::holds_alternative<ipc::HelloRequest>(request(ipc::to_header(ipc::HelloRequest{})).body));
}

TEST_CASE("ipc: a request of any type gets its own header; queue states read back", "[ipc]") {
    const ipc::RequestBody ack = ipc::AckRequest{"nightly", 7};
    CHECK(ipc::to_header(ack) == json{{"op", "ack"}, {"durable", "nightly"}, {"cursor_seq", 7}});
    ipc::QueueRequest list{ipc::QueueOp::list};
    list.state = ipc::QueueStateFilter::dead;
    list.limit = 5;
    CHECK(ipc::to_header(ipc::RequestBody{list}) == json{{"op", "queue.list"}, {"state", "dead"}, {"limit", 5}});
    ipc::QueueRequest retry{ipc::QueueOp::retry};
    retry.dead = true;
    retry.ttl_ms = 60'000;
    const auto parsed = request(ipc::to_header(ipc::RequestBody{retry}));
    REQUIRE(std::holds_alternative<ipc::QueueRequest>(parsed.body));
    CHECK(std::get<ipc::QueueRequest>(parsed.body).dead);
    CHECK(std::get<ipc::QueueRequest>(parsed.body).ttl_ms == 60'000);
    CHECK(ipc::to_header(ipc::RequestBody{ipc::CursorListRequest{}}) == json{{"op", "cursor.list"}});
    for (const auto state : {ipc::QueueStateFilter::waiting, ipc::QueueStateFilter::in_flight,
                             ipc::QueueStateFilter::dead, ipc::QueueStateFilter::all}) {
        CHECK(ipc::parse_state_filter(ipc::to_string(state)) == state);
    }
    CHECK_FALSE(ipc::parse_state_filter("gone").has_value());
}

TEST_CASE("ipc: publish_batch carries a publish's fields and each payload's length", "[ipc]") {
    const auto parsed = request(json{{"op", "publish_batch"},
                                     {"id", 4},
                                     {"channel", "agent.host42.lines"},
                                     {"priority", "high"},
                                     {"headers", {{"k", "v"}}},
                                     {"lengths", {3, 0, 5}}});
    REQUIRE(std::holds_alternative<ipc::PublishBatchRequest>(parsed.body));
    const auto& batch = std::get<ipc::PublishBatchRequest>(parsed.body);
    CHECK(batch.fields.channel == "agent.host42.lines");
    CHECK(batch.fields.priority == aegis::protocol::Priority::high);
    CHECK(batch.fields.headers.size() == 1);
    CHECK(batch.lengths == std::vector<std::uint32_t>{3, 0, 5});

    ipc::PublishBatchRequest built;
    built.fields.channel = "backend.host42.x";
    built.fields.kind = aegis::protocol::Kind::reply;
    built.lengths = {1, 2};
    const auto header = ipc::to_header(built);
    CHECK(header["op"] == "publish_batch");
    const auto back = std::get<ipc::PublishBatchRequest>(request(json::parse(header.dump())).body);
    CHECK(back.fields.channel == built.fields.channel);
    CHECK(back.fields.kind == built.fields.kind);
    CHECK(back.lengths == built.lengths);
    CHECK(back.message_ids);
    CHECK_FALSE(header.contains("message_ids"));
    built.message_ids = false;
    const auto without_ids = ipc::to_header(built);
    CHECK(without_ids["message_ids"] == false);
    CHECK_FALSE(std::get<ipc::PublishBatchRequest>(request(json::parse(without_ids.dump())).body).message_ids);

    const json base{{"op", "publish_batch"}, {"channel", "a.b"}};
    const auto with = [&](const json& extra) {
        auto out = base;
        out.update(extra);
        return request_error(out);
    };
    CHECK(request_error(base) == ipc::LocalReason::missing_field);  // no lengths
    CHECK(with({{"lengths", json::array()}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", 3}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", {1, -1}}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", {1, "2"}}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", {ipc::kMaxPayloadBytes + 1}}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", std::vector<int>(ipc::kMaxBatchMessages + 1, 1)}}) == ipc::LocalReason::invalid_field);
    auto most = base;
    most["lengths"] = std::vector<int>(ipc::kMaxBatchMessages, 1);
    CHECK(std::holds_alternative<ipc::Request>(ipc::parse_request(most)));
    CHECK(with({{"lengths", {1}}, {"wait_ack", true}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", {1}}, {"message_ids", "no"}}) == ipc::LocalReason::invalid_field);
    CHECK(with({{"lengths", {1}}, {"priority", "urgent"}}) == ipc::LocalReason::invalid_field);  // publish's checks
}

TEST_CASE("ipc: bad requests get typed errors", "[ipc]") {
    CHECK(request_error(json{{"v", 1}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", 5}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "explode"}}) == ipc::LocalReason::unknown_op);
    CHECK(request_error(json{{"op", "hello"}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "hello"}, {"v", "1"}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", 1}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", "a.b"}, {"priority", "urgent"}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", "a.b"}, {"ttl_ms", -1}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", "a.b"}, {"kind", "heartbeat"}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", "a.b"}, {"correlation", "xyz"}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "publish"}, {"channel", "a.b"}, {"headers", {{"k", 1}}}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "subscribe"}, {"patterns", json::array()}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "subscribe"}, {"patterns", {1}}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "status"}, {"id", {1, 2}}}) == ipc::LocalReason::invalid_field);

    auto parsed = ipc::parse_request(json{{"op", "nope"}, {"id", 42}});
    CHECK(std::get<ipc::RequestError>(parsed).id == 42);  // errors still echo the id
}

TEST_CASE("ipc: every local reason has its documented name and exit code", "[ipc]") {
    using R = ipc::LocalReason;
    using aegis::ExitCode;
    const std::vector<std::tuple<R, std::string_view, ExitCode>> table{
        {R::bad_frame, "bad_frame", ExitCode::usage},
        {R::frame_too_large, "frame_too_large", ExitCode::usage},
        {R::bad_json, "bad_json", ExitCode::usage},
        {R::bad_request, "bad_request", ExitCode::usage},
        {R::unknown_op, "unknown_op", ExitCode::usage},
        {R::missing_field, "missing_field", ExitCode::usage},
        {R::invalid_field, "invalid_field", ExitCode::usage},
        {R::version_mismatch, "version_mismatch", ExitCode::failure},
        {R::hello_required, "hello_required", ExitCode::usage},
        {R::permission_denied, "permission_denied", ExitCode::unreachable},
        {R::not_connected, "not_connected", ExitCode::unreachable},
        {R::overloaded, "overloaded", ExitCode::failure},
        {R::queue_full, "queue_full", ExitCode::failure},
        {R::store_failed, "store_failed", ExitCode::failure},
        {R::not_found, "not_found", ExitCode::failure},
        {R::cursor_busy, "cursor_busy", ExitCode::failure},
        {R::patterns_differ, "patterns_differ", ExitCode::usage},
        {R::dropped, "dropped", ExitCode::refused},
        {R::gave_up, "gave_up", ExitCode::failure},
        {R::failed, "failed", ExitCode::failure},
    };
    for (const auto& [reason, name, exit] : table) {
        CHECK(ipc::name(reason) == name);
        CHECK(ipc::exit_code_for(reason) == exit);
        const auto wire = ipc::wire_error(reason, "text", exit);
        CHECK(wire.reason == name);
        CHECK(wire.message == "text");
    }
    // An error with no protocol reason travels as "failed"; one with a reason keeps its name.
    CHECK(ipc::to_wire(aegis::make_error(ExitCode::failure, "disk")).reason == "failed");
    const auto expired = ipc::wire_error(aegis::protocol::Reason::expired, "gone", ExitCode::refused);
    CHECK(expired.reason == "expired");
    CHECK(ipc::to_error(expired).reason == static_cast<std::uint16_t>(aegis::protocol::Reason::expired));
}

TEST_CASE("ipc: error responses carry reason, message and exit code, and read back", "[ipc]") {
    const auto wire = ipc::to_wire(ipc::LocalError{ipc::LocalReason::unknown_op, "unknown op 'x'"});
    const auto response = ipc::error_response(9, wire);
    CHECK(response["ok"] == false);
    CHECK(response["id"] == 9);
    CHECK(response["error"]["reason"] == "unknown_op");
    CHECK(response["error"]["exit"] == aegis::to_int(aegis::ExitCode::usage));
    const auto back = ipc::response_error(response);
    REQUIRE(back.has_value());
    CHECK(back->message == "unknown op 'x'");
    CHECK_FALSE(ipc::response_error(ipc::ok_response(1)).has_value());

    // A relayed gateway refusal keeps its protocol reason for the tool.
    const auto denied = ipc::to_error(ipc::WireError{"access_denied", "access denied", aegis::ExitCode::refused});
    CHECK(denied.exit == aegis::ExitCode::refused);
    CHECK(denied.reason == static_cast<std::uint16_t>(aegis::protocol::Reason::access_denied));
}

TEST_CASE("ipc: a message event carries every envelope field and reads back", "[ipc]") {
    aegis::protocol::Envelope envelope;
    envelope.id = aegis::protocol::new_message_id(1731000000000);
    envelope.channel = "agent.host42.anomalies";
    envelope.origin.fill(7);
    envelope.origin_id = "host42";
    envelope.sequence = 12;
    envelope.timestamp_ms = 1'700'000'000'000;
    envelope.expires_ms = 1'700'000'060'000;
    envelope.priority = aegis::protocol::Priority::high;
    envelope.kind = aegis::protocol::Kind::reply;
    envelope.correlation.fill(0x11);
    envelope.headers = {{"x", "1"}};
    const auto header = ipc::message_event(envelope);
    CHECK(header["event"] == "message");
    CHECK(header["verified"] == true);
    CHECK(header["origin_fingerprint"] == aegis::crypto::fingerprint(envelope.origin));

    const auto frame = frame_of(ipc::decode_frame(ipc::encode_frame(header, aegis::as_bytes("hi\n"))));
    const auto message = ipc::parse_message_event(frame.header, frame.payload);
    REQUIRE(message.has_value());
    CHECK(message->id == envelope.id);
    CHECK(message->channel == envelope.channel);
    CHECK(message->origin == envelope.origin);
    CHECK(message->origin_id == "host42");
    CHECK(message->verified);
    CHECK(message->sequence == 12);
    CHECK(message->timestamp_ms == envelope.timestamp_ms);
    CHECK(message->expires_ms == envelope.expires_ms);
    CHECK(message->priority == envelope.priority);
    CHECK(message->kind == envelope.kind);
    REQUIRE(message->correlation.has_value());
    CHECK(*message->correlation == envelope.correlation);
    CHECK(message->headers == envelope.headers);
    CHECK(aegis::as_text(message->payload) == "hi\n");
    CHECK_FALSE(ipc::parse_message_event(json{{"id", 1}, {"ok", true}}, {}).has_value());
}

TEST_CASE("ipc: message frames made one after another carry each message's fields alone", "[ipc]") {
    // message_frame fills one header in place: nothing of a message may stay for the next.
    std::vector<aegis::protocol::Envelope> envelopes(4);
    for (std::size_t i = 0; i < envelopes.size(); ++i) {
        auto& e = envelopes[i];
        e.id = aegis::protocol::new_message_id(1731000000000 + i);
        e.channel = i % 2 == 0 ? "agent.host42.anomalies" : "agent.host7.x";
        e.origin.fill(static_cast<std::uint8_t>(i < 2 ? 7 : 9));
        e.origin_id = i < 2 ? "host42" : "host7";
        e.sequence = 100 + i;
        e.timestamp_ms = 1'700'000'000'000 + i;
        e.payload = Bytes(i, static_cast<std::uint8_t>('a' + i));
    }
    envelopes[0].expires_ms = 1'700'000'060'000;
    envelopes[0].correlation.fill(0x11);
    envelopes[0].headers = {{"x", "1"}, {"y", "2"}};
    envelopes[0].priority = aegis::protocol::Priority::critical;
    envelopes[0].kind = aegis::protocol::Kind::reply;
    envelopes[2].headers = {{"z", "3"}};
    for (const auto& envelope : envelopes) {
        const auto frame = frame_of(ipc::decode_frame(ipc::message_frame(envelope)));
        CHECK(frame.header == ipc::message_event(envelope));
        CHECK(frame.payload == envelope.payload);
        const auto message = ipc::parse_message_event(frame.header, frame.payload);
        REQUIRE(message.has_value());
        CHECK(message->id == envelope.id);
        CHECK(message->origin == envelope.origin);
        CHECK(message->origin_id == envelope.origin_id);
        CHECK(message->channel == envelope.channel);
        CHECK(message->sequence == envelope.sequence);
        CHECK(message->expires_ms == envelope.expires_ms);
        CHECK(message->correlation.has_value() == (envelope.correlation != aegis::protocol::MessageId{}));
        CHECK(message->headers == envelope.headers);
        CHECK(message->priority == envelope.priority);
        CHECK(message->kind == envelope.kind);
    }
    const auto fresh = ipc::message_event(envelopes[1]);
    CHECK_FALSE(fresh.contains("expires_ms"));
    CHECK_FALSE(fresh.contains("correlation"));
    CHECK(fresh["headers"] == json::array());
}

TEST_CASE("ipc: queue operations parse into one typed request", "[ipc]") {
    const std::string id(32, 'b');
    const auto list = request(json{{"op", "queue.list"}, {"state", "dead"}, {"limit", 10}});
    REQUIRE(std::holds_alternative<ipc::QueueRequest>(list.body));
    const auto& l = std::get<ipc::QueueRequest>(list.body);
    CHECK(l.op == ipc::QueueOp::list);
    CHECK(l.state == ipc::QueueStateFilter::dead);
    CHECK(l.limit == 10);

    const auto show = std::get<ipc::QueueRequest>(request(json{{"op", "queue.show"}, {"message_id", id}}).body);
    CHECK(show.op == ipc::QueueOp::show);
    REQUIRE(show.message_id.has_value());
    CHECK((*show.message_id)[0] == 0xbb);

    const auto retry_dead = std::get<ipc::QueueRequest>(request(json{{"op", "queue.retry"}, {"dead", true}}).body);
    CHECK(retry_dead.op == ipc::QueueOp::retry);
    CHECK(retry_dead.dead);
    CHECK_FALSE(retry_dead.message_id.has_value());
    CHECK(std::get<ipc::QueueRequest>(request(json{{"op", "queue.drop"}, {"message_id", id}}).body).op ==
          ipc::QueueOp::drop);
    CHECK(std::get<ipc::QueueRequest>(request(json{{"op", "queue.purge"}, {"all", true}}).body).all);
    CHECK(std::get<ipc::QueueRequest>(request(json{{"op", "queue.stats"}}).body).op == ipc::QueueOp::stats);

    // Built headers read back the same.
    ipc::QueueRequest built;
    built.op = ipc::QueueOp::list;
    built.state = ipc::QueueStateFilter::in_flight;
    built.limit = 3;
    const auto back = std::get<ipc::QueueRequest>(request(ipc::to_header(built)).body);
    CHECK(back.op == ipc::QueueOp::list);
    CHECK(back.state == ipc::QueueStateFilter::in_flight);
    CHECK(back.limit == 3);
}

TEST_CASE("ipc: bad queue operations get typed errors", "[ipc]") {
    CHECK(request_error(json{{"op", "queue.show"}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "queue.drop"}, {"message_id", "xyz"}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.retry"}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "queue.purge"}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.purge"}, {"dead", true}, {"all", true}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.list"}, {"state", "gone"}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.list"}, {"limit", -1}}) == ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.explode"}}) == ipc::LocalReason::unknown_op);
}

TEST_CASE("ipc: durable subscribe, ack and cursor.delete parse and check the cursor name", "[ipc]") {
    const auto subscribe =
        request(json{{"op", "subscribe"}, {"patterns", json::array({"backend.host42.>"})}, {"durable", "cron-1"}});
    CHECK(std::get<ipc::SubscribeRequest>(subscribe.body).durable == "cron-1");
    const auto ack = request(json{{"op", "ack"}, {"durable", "cron-1"}, {"cursor_seq", 17}});
    REQUIRE(std::holds_alternative<ipc::AckRequest>(ack.body));
    CHECK(std::get<ipc::AckRequest>(ack.body).cursor_seq == 17);
    const auto deleted = request(json{{"op", "cursor.delete"}, {"durable", "cron-1"}});
    CHECK(std::get<ipc::CursorDeleteRequest>(deleted.body).durable == "cron-1");
    CHECK(request(ipc::to_header(ipc::AckRequest{"x", 5})).body.index() == ack.body.index());

    CHECK(request_error(json{{"op", "subscribe"}, {"patterns", {"a.b"}}, {"durable", ""}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "subscribe"}, {"patterns", {"a.b"}}, {"durable", "a/b"}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "ack"}, {"durable", "x"}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "ack"}, {"cursor_seq", 1}}) == ipc::LocalReason::missing_field);
    CHECK(request_error(json{{"op", "cursor.delete"}}) == ipc::LocalReason::missing_field);
}

TEST_CASE("ipc: a durable reset, cursor.list and a retry's fresh TTL round-trip", "[ipc]") {
    const auto reset = request(ipc::to_header(ipc::SubscribeRequest{{"backend.host42.>"}, "cron-1", true}));
    CHECK(std::get<ipc::SubscribeRequest>(reset.body).reset);
    CHECK_FALSE(
        std::get<ipc::SubscribeRequest>(request(ipc::to_header(ipc::SubscribeRequest{{"a.b"}, "cron-1"})).body).reset);
    CHECK(std::holds_alternative<ipc::CursorListRequest>(request(ipc::to_header(ipc::CursorListRequest{})).body));
    ipc::QueueRequest retry;
    retry.op = ipc::QueueOp::retry;
    retry.dead = true;
    retry.ttl_ms = 60'000;
    CHECK(std::get<ipc::QueueRequest>(request(ipc::to_header(retry)).body).ttl_ms == 60'000);
    CHECK(request_error(json{{"op", "subscribe"}, {"patterns", {"a.b"}}, {"durable", "x"}, {"reset", "yes"}}) ==
          ipc::LocalReason::invalid_field);
    CHECK(request_error(json{{"op", "queue.retry"}, {"dead", true}, {"ttl_ms", -1}}) ==
          ipc::LocalReason::invalid_field);
}

namespace {

// Envelopes of one delivery: one channel and origin, each message's own fields varied.
[[nodiscard]] std::vector<aegis::protocol::Envelope> delivery(std::size_t count) {
    std::vector<aegis::protocol::Envelope> envelopes(count);
    for (std::size_t i = 0; i < count; ++i) {
        auto& e = envelopes[i];
        e.id = aegis::protocol::new_message_id(1731000000000 + i);
        e.channel = "backend.host42.policies";
        e.origin.fill(7);
        e.origin_id = "backend1";
        e.sequence = 100 + i;
        e.timestamp_ms = 1'700'000'000'000 + i;
        e.payload = Bytes(i % 5, static_cast<std::uint8_t>('a' + i % 26));
    }
    envelopes[0].expires_ms = 1'700'000'060'000;
    envelopes[0].correlation.fill(0x11);
    envelopes[0].headers = {{"x", "1"}, {"y", ""}};
    envelopes[0].priority = aegis::protocol::Priority::critical;
    envelopes[0].kind = aegis::protocol::Kind::reply;
    if (count > 2) envelopes[2].headers = {{"content-type", "text/plain"}};
    return envelopes;
}

// What the "message" event of `envelope` reads back as: the reference a batch must match.
[[nodiscard]] ipc::DeliveredMessage via_json(const aegis::protocol::Envelope& envelope) {
    const auto frame = frame_of(ipc::decode_frame(ipc::message_frame(envelope)));
    auto message = ipc::parse_message_event(frame.header, frame.payload);
    REQUIRE(message.has_value());
    return *message;
}

void check_same(const ipc::DeliveredMessage& a, const ipc::DeliveredMessage& b) {
    CHECK(a.id == b.id);
    CHECK(a.channel == b.channel);
    CHECK(a.origin_id == b.origin_id);
    CHECK(a.origin_fingerprint == b.origin_fingerprint);
    CHECK(a.origin == b.origin);
    CHECK(a.verified == b.verified);
    CHECK(a.sequence == b.sequence);
    CHECK(a.timestamp_ms == b.timestamp_ms);
    CHECK(a.expires_ms == b.expires_ms);
    CHECK(a.priority == b.priority);
    CHECK(a.kind == b.kind);
    CHECK(a.correlation == b.correlation);
    CHECK(a.headers == b.headers);
    CHECK(a.payload == b.payload);
}

[[nodiscard]] std::vector<ipc::DeliveredMessage> batch_of(const Bytes& bytes) {
    const auto frame = frame_of(ipc::decode_frame(bytes));
    auto parsed = ipc::parse_message_batch(frame.header, frame.payload);
    REQUIRE(std::holds_alternative<std::vector<ipc::DeliveredMessage>>(parsed));
    return std::get<std::vector<ipc::DeliveredMessage>>(parsed);
}

}  // namespace

TEST_CASE("ipc: a messages event carries every field of every message, as the message events do", "[ipc]") {
    const auto envelopes = delivery(7);
    const auto frames = ipc::message_batch_frames(envelopes);
    REQUIRE(frames.size() == 1);
    const auto header = frame_of(ipc::decode_frame(frames[0])).header;
    CHECK(header["event"] == "messages");
    CHECK(header["count"] == 7);
    const auto messages = batch_of(frames[0]);
    REQUIRE(messages.size() == envelopes.size());
    for (std::size_t i = 0; i < envelopes.size(); ++i) {
        INFO(i);
        check_same(messages[i], via_json(envelopes[i]));
    }
}

TEST_CASE("ipc: a delivery over 4096 messages comes in several messages events, in order", "[ipc]") {
    const auto envelopes = delivery(4096 + 5);
    const auto frames = ipc::message_batch_frames(envelopes);
    REQUIRE(frames.size() == 2);
    auto first = batch_of(frames[0]);
    const auto second = batch_of(frames[1]);
    CHECK(first.size() == 4096);
    CHECK(second.size() == 5);
    first.insert(first.end(), second.begin(), second.end());
    for (std::size_t i = 0; i < envelopes.size(); ++i) CHECK(first[i].sequence == envelopes[i].sequence);
}

TEST_CASE("ipc: big messages split a delivery into frames within the frame limit, in order", "[ipc]") {
    auto envelopes = delivery(4);
    envelopes[1].payload = Bytes(aegis::protocol::kMaxPayloadBytes, 'b');
    envelopes[2].payload = Bytes(aegis::protocol::kMaxPayloadBytes / 2, 'c');
    const auto frames = ipc::message_batch_frames(envelopes);
    REQUIRE(frames.size() == 2);  // {0, 1} and {2, 3}: 16 MiB and 8 MiB do not fit one frame
    std::vector<std::uint64_t> order;
    for (const auto& bytes : frames) {
        CHECK(bytes.size() <= 4 + std::size_t{ipc::kMaxFrameBytes});
        for (const auto& message : batch_of(bytes)) order.push_back(message.sequence);
    }
    CHECK(order == std::vector<std::uint64_t>{100, 101, 102, 103});
}

// The largest messages a batch holds (§5), in both events: over the limit of the frames a client
// sends (17,825,796 bytes, 1 MiB of JSON header), within the one it reads the broker's with.
TEST_CASE("ipc: a message at the batch limit fits the frames a client reads, in either event", "[ipc]") {
    namespace protocol = aegis::protocol;
    auto envelope = delivery(1).front();
    envelope.channel = "a.b";
    envelope.origin_id = "o";
    envelope.headers.clear();
    envelope.payload = Bytes(protocol::kMaxPayloadBytes, 'p');
    // 16 headers fill the batch to its last byte: its fixed fields, signature, message and headers.
    const std::size_t fixed = 1 + 2 + envelope.channel.size() + 32 + 1 + envelope.origin_id.size() + 2 + 64;
    std::size_t room = protocol::kMaxBatchBytes - fixed - protocol::encoded_message_bytes({}, envelope.payload.size());
    for (int i = 0; i < 16; ++i) {
        const std::string key = "h" + std::to_string(i % 10) + std::to_string(i / 10);
        const std::size_t value =
            i < 15 ? room / (16 - static_cast<std::size_t>(i)) - 6 - key.size() : room - 6 - key.size();
        envelope.headers.emplace_back(key, std::string(value, 'v'));
        room -= 6 + key.size() + value;
    }
    REQUIRE(room == 0);
    REQUIRE(fixed + protocol::encoded_message_bytes(envelope.headers, envelope.payload.size()) ==
            protocol::kMaxBatchBytes);

    const auto batch = ipc::message_batch_frames({envelope});
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].size() > 4 + std::size_t{ipc::kMaxFrameBytes});  // a request this large is refused
    CHECK(reason_of(ipc::decode_frame(batch[0])) == ipc::LocalReason::frame_too_large);
    const auto batch_frame = frame_of(ipc::decode_frame(batch[0], ipc::kMaxEventFrameBytes, ipc::kMaxEventHeaderBytes));
    const auto messages = ipc::parse_message_batch(batch_frame.header, batch_frame.payload);
    REQUIRE(std::holds_alternative<std::vector<ipc::DeliveredMessage>>(messages));
    CHECK(std::get<std::vector<ipc::DeliveredMessage>>(messages).front().headers == envelope.headers);

    const auto single = ipc::message_frame(envelope);
    aegis::WireReader reader(ByteView(single).subspan(4));
    std::uint32_t header_length = 0;
    REQUIRE(reader.u32(header_length));
    CHECK(header_length > ipc::kMaxHeaderBytes);
    CHECK(reason_of(ipc::decode_frame(single)) == ipc::LocalReason::frame_too_large);
    const auto single_frame = frame_of(ipc::decode_frame(single, ipc::kMaxEventFrameBytes, ipc::kMaxEventHeaderBytes));
    auto message = ipc::parse_message_event(single_frame.header, single_frame.payload);
    REQUIRE(message.has_value());
    CHECK(message->payload.size() == protocol::kMaxPayloadBytes);
    CHECK(message->headers == envelope.headers);
}

// kMaxEventHeaderBytes is the header of the largest "message" event exactly: every member at its
// longest, a durable cursor's position in it, every byte of the origin id and the headers escaped.
TEST_CASE("ipc: the limit on an event's JSON header is the largest message event's, exactly", "[ipc]") {
    namespace protocol = aegis::protocol;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    auto envelope = delivery(1).front();
    envelope.channel = std::string(protocol::kMaxChannelBytes, 'c');
    envelope.origin_id = std::string(protocol::kMaxOriginIdBytes, '\x01');
    envelope.sequence = kMax;
    envelope.timestamp_ms = kMax;
    envelope.expires_ms = kMax;
    envelope.priority = protocol::Priority::critical;
    envelope.kind = protocol::Kind::heartbeat;
    envelope.correlation.fill(0xee);
    envelope.headers.assign(protocol::kMaxHeaders, {std::string(protocol::kMaxHeaderKeyBytes, '\x01'),
                                                    std::string(protocol::kMaxHeaderValueBytes, '\x02')});
    envelope.payload = Bytes(1000, 'p');
    auto header = ipc::message_event(envelope);
    header["cursor_seq"] = kMax;  // as a durable cursor's backlog sends it
    const auto bytes = ipc::encode_frame(header, envelope.payload);
    CHECK(bytes.size() == ipc::kPrefixBytes + ipc::kMaxEventHeaderBytes + envelope.payload.size());
    const auto frame = frame_of(ipc::decode_frame(bytes, ipc::kMaxEventFrameBytes, ipc::kMaxEventHeaderBytes));
    auto message = ipc::parse_message_event(frame.header, frame.payload);
    REQUIRE(message.has_value());
    CHECK(message->headers == envelope.headers);
    CHECK(message->origin_id == envelope.origin_id);
    // Its payload may be a batch's less its headers; no event is larger than the frame limit.
    CHECK(std::size_t{ipc::kMaxEventFrameBytes} == 4 + ipc::kMaxEventHeaderBytes + protocol::kMaxBatchBytes);
}

TEST_CASE("ipc: a malformed messages event is bad_frame, never a crash or a short read", "[ipc]") {
    const auto frames = ipc::message_batch_frames(delivery(3));
    REQUIRE(frames.size() == 1);
    const auto frame = frame_of(ipc::decode_frame(frames[0]));
    const auto bad = [](const json& header, ByteView payload) {
        const auto parsed = ipc::parse_message_batch(header, payload);
        if (!std::holds_alternative<ipc::LocalError>(parsed)) return false;
        return std::get<ipc::LocalError>(parsed).reason == ipc::LocalReason::bad_frame;
    };
    CHECK_FALSE(bad(frame.header, frame.payload));
    // Every truncation, and a byte too many.
    for (std::size_t size = 0; size < frame.payload.size(); ++size) {
        INFO(size);
        CHECK(bad(frame.header, ByteView(frame.payload).first(size)));
    }
    auto longer = frame.payload;
    longer.push_back(0);
    CHECK(bad(frame.header, longer));
    // A count that does not match, or is out of bounds.
    for (const json& count : {json(0), json(2), json(4), json(4097), json(-1), json("3"), json(3.5)}) {
        auto header = frame.header;
        header["count"] = count;
        INFO(count.dump());
        CHECK(bad(header, frame.payload));
    }
    // Shared fields missing or of the wrong type.
    for (const char* member : {"channel", "origin_id", "origin_fingerprint", "origin_key", "verified", "event"}) {
        auto header = frame.header;
        header.erase(member);
        INFO(member);
        CHECK(bad(header, frame.payload));
    }
    auto short_key = frame.header;
    short_key["origin_key"] = "AAAA";
    CHECK(bad(short_key, frame.payload));
    // An oversized length inside a record: the payload length of the first message (after its
    // 16 + 24 + 2 + 16 bytes, 2 header bytes and two headers "x"="1", "y"="").
    const std::size_t payload_length_at = 16 + 24 + 2 + 16 + 2 + (2 + 1 + 4 + 1) + (2 + 1 + 4 + 0);
    auto oversized = frame.payload;
    oversized[payload_length_at] = 0xff;
    CHECK(bad(frame.header, oversized));
    // An unknown priority, an unknown kind, more than 64 headers.
    for (const std::size_t at : {std::size_t{40}, std::size_t{41}}) {
        auto unknown = frame.payload;
        unknown[at] = 9;
        CHECK(bad(frame.header, unknown));
    }
    auto many_headers = frame.payload;
    many_headers[58] = 0;
    many_headers[59] = 65;
    CHECK(bad(frame.header, many_headers));
}

TEST_CASE("ipc: subscribe asks for batches; the broker's features are read from its hello", "[ipc]") {
    const auto header = ipc::to_header(ipc::SubscribeRequest{{"backend.>"}, "", false, true});
    CHECK(header["batch"] == true);
    const auto parsed = ipc::parse_request(header);
    REQUIRE(std::holds_alternative<ipc::Request>(parsed));
    CHECK(std::get<ipc::SubscribeRequest>(std::get<ipc::Request>(parsed).body).batch);
    CHECK_FALSE(ipc::to_header(ipc::SubscribeRequest{{"backend.>"}}).contains("batch"));
    const auto wrong = ipc::parse_request(json{{"op", "subscribe"}, {"patterns", {"a"}}, {"batch", 1}});
    REQUIRE(std::holds_alternative<ipc::RequestError>(wrong));
    CHECK(std::get<ipc::RequestError>(wrong).error.reason == ipc::LocalReason::invalid_field);
    CHECK(ipc::offers(json{{"features", {"publish_batch", "message_batch"}}}, ipc::kMessageBatchFeature));
    CHECK_FALSE(ipc::offers(json{{"features", {"publish_batch"}}}, ipc::kMessageBatchFeature));
    CHECK_FALSE(ipc::offers(json{{"v", 1}}, ipc::kMessageBatchFeature));
    CHECK_FALSE(ipc::offers(json{{"features", "message_batch"}}, ipc::kMessageBatchFeature));
}
