#include "ipc/messages.h"

#include <fmt/format.h>

#include "core/wire.h"
#include "crypto/primitives.h"

namespace aegis::ipc {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxPatterns = 256;

// Why a field could not be read; the caller adds the request id.
using FieldError = LocalError;

[[nodiscard]] FieldError missing(std::string_view field) {
    return {LocalReason::missing_field, fmt::format("missing field '{}'", field)};
}

[[nodiscard]] FieldError invalid(std::string_view field, std::string_view expected) {
    return {LocalReason::invalid_field, fmt::format("field '{}' must be {}", field, expected)};
}

// Each reader returns the error (if any) and fills `out` when the field is present and valid.
[[nodiscard]] std::optional<FieldError> read_string(const json& header, std::string_view field, std::string& out,
                                                    bool required) {
    const auto it = header.find(field);
    if (it == header.end()) return required ? std::optional(missing(field)) : std::nullopt;
    if (!it->is_string()) return invalid(field, "a string");
    out = it->get<std::string>();
    return std::nullopt;
}

[[nodiscard]] std::optional<FieldError> read_unsigned(const json& header, std::string_view field, std::uint64_t& out) {
    const auto it = header.find(field);
    if (it == header.end()) return std::nullopt;
    // JSON text gives unsigned numbers; a json built in code may hold a signed one.
    const bool non_negative = it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0);
    if (!non_negative) return invalid(field, "a non-negative integer");
    out = it->get<std::uint64_t>();
    return std::nullopt;
}

[[nodiscard]] std::optional<FieldError> read_bool(const json& header, std::string_view field, bool& out) {
    const auto it = header.find(field);
    if (it == header.end()) return std::nullopt;
    if (!it->is_boolean()) return invalid(field, "true or false");
    out = it->get<bool>();
    return std::nullopt;
}

[[nodiscard]] std::optional<FieldError> read_headers(const json& header, Headers& out) {
    const auto it = header.find("headers");
    if (it == header.end() || it->is_null()) return std::nullopt;
    if (it->is_object()) {
        for (const auto& [key, value] : it->items()) {
            if (!value.is_string()) return invalid("headers", "strings");
            out.emplace_back(key, value.get<std::string>());
        }
    } else if (it->is_array()) {
        // [[key, value], ...] keeps the order the sender gave.
        for (const auto& pair : *it) {
            if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
                return invalid("headers", "an object of strings or an array of [key, value] string pairs");
            }
            out.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
        }
    } else {
        return invalid("headers", "an object of strings or an array of [key, value] string pairs");
    }
    if (out.size() > protocol::kMaxHeaders)
        return invalid("headers", fmt::format("at most {} entries", protocol::kMaxHeaders));
    return std::nullopt;
}

[[nodiscard]] FieldError invalid_cursor_name() {
    return invalid("durable", fmt::format("a name of 1 to {} characters [A-Za-z0-9_.-]", kMaxCursorName));
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_hello(const json& header) {
    const auto it = header.find("v");
    if (it == header.end()) return missing("v");
    if (!it->is_number_integer()) return invalid("v", "an integer");
    HelloRequest hello;
    hello.version = it->get<int>();
    if (auto error = read_string(header, "client", hello.client, false)) return *error;
    return hello;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_publish(const json& header) {
    PublishRequest publish;
    if (auto error = read_string(header, "channel", publish.channel, true)) return *error;
    std::string text;
    if (auto error = read_string(header, "priority", text, false)) return *error;
    if (!text.empty()) {
        const auto priority = protocol::parse_priority(text);
        if (!priority) return invalid("priority", "critical, high, normal or low");
        publish.priority = *priority;
    }
    if (auto error = read_unsigned(header, "ttl_ms", publish.ttl_ms)) return *error;
    if (auto error = read_headers(header, publish.headers)) return *error;
    text.clear();
    if (auto error = read_string(header, "kind", text, false)) return *error;
    if (!text.empty()) {
        const auto kind = parse_kind(text);
        if (!kind || *kind == protocol::Kind::heartbeat || *kind == protocol::Kind::ack) {
            return invalid("kind", "event, request or reply");
        }
        publish.kind = *kind;
    }
    text.clear();
    if (auto error = read_string(header, "correlation", text, false)) return *error;
    if (!text.empty()) {
        publish.correlation = message_id_from_hex(text);
        if (!publish.correlation) return invalid("correlation", "a message id (32 hex digits)");
    }
    if (auto error = read_bool(header, "wait_ack", publish.wait_ack)) return *error;
    return publish;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_publish_batch(const json& header) {
    auto fields = parse_publish(header);
    if (auto* error = std::get_if<FieldError>(&fields)) return *error;
    PublishBatchRequest batch;
    batch.fields = std::get<PublishRequest>(std::get<RequestBody>(std::move(fields)));
    if (batch.fields.wait_ack) return invalid("wait_ack", "false in publish_batch (publish each message to wait)");
    const auto it = header.find("lengths");
    if (it == header.end()) return missing("lengths");
    const auto expected = fmt::format("an array of 1 to {} payload lengths", kMaxBatchMessages);
    if (!it->is_array() || it->empty() || it->size() > kMaxBatchMessages) return invalid("lengths", expected);
    batch.lengths.reserve(it->size());
    for (const auto& length : *it) {
        const bool non_negative =
            length.is_number_unsigned() || (length.is_number_integer() && length.get<std::int64_t>() >= 0);
        if (!non_negative || length.get<std::uint64_t>() > protocol::kMaxPayloadBytes)
            return invalid("lengths", expected);
        batch.lengths.push_back(length.get<std::uint32_t>());
    }
    if (auto error = read_bool(header, "message_ids", batch.message_ids)) return *error;
    return batch;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_subscribe(const json& header) {
    const auto it = header.find("patterns");
    if (it == header.end()) return missing("patterns");
    if (!it->is_array() || it->empty()) return invalid("patterns", "a non-empty array of strings");
    if (it->size() > kMaxPatterns) return invalid("patterns", fmt::format("at most {} patterns", kMaxPatterns));
    SubscribeRequest subscribe;
    for (const auto& pattern : *it) {
        if (!pattern.is_string()) return invalid("patterns", "a non-empty array of strings");
        subscribe.patterns.push_back(pattern.get<std::string>());
    }
    if (auto error = read_string(header, "durable", subscribe.durable, false)) return *error;
    if (header.contains("durable") && !valid_cursor_name(subscribe.durable)) return invalid_cursor_name();
    if (auto error = read_bool(header, "reset", subscribe.reset)) return *error;
    if (auto error = read_bool(header, "batch", subscribe.batch)) return *error;
    return subscribe;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_queue(std::string_view op, const json& header) {
    QueueRequest queue;
    if (auto error = read_bool(header, "dead", queue.dead)) return *error;
    if (auto error = read_bool(header, "all", queue.all)) return *error;
    if (auto error = read_unsigned(header, "limit", queue.limit)) return *error;
    if (auto error = read_unsigned(header, "ttl_ms", queue.ttl_ms)) return *error;
    std::string text;
    if (auto error = read_string(header, "state", text, false)) return *error;
    if (!text.empty()) {
        const auto state = parse_state_filter(text);
        if (!state) return invalid("state", "waiting, in_flight, dead or all");
        queue.state = *state;
    }
    text.clear();
    if (auto error = read_string(header, "message_id", text, false)) return *error;
    if (header.contains("message_id")) {
        queue.message_id = message_id_from_hex(text);
        if (!queue.message_id) return invalid("message_id", "a message id (32 hex digits)");
    }
    if (op == "queue.list") {
        queue.op = QueueOp::list;
    } else if (op == "queue.show" || op == "queue.drop") {
        queue.op = op == "queue.show" ? QueueOp::show : QueueOp::drop;
        if (!queue.message_id) return missing("message_id");
    } else if (op == "queue.retry") {
        queue.op = QueueOp::retry;
        if (!queue.message_id && !queue.dead) return missing("message_id");
    } else if (op == "queue.purge") {
        queue.op = QueueOp::purge;
        if (queue.dead == queue.all) return invalid("dead", "true, or else 'all' true (one of the two)");
    } else {
        queue.op = QueueOp::stats;
    }
    return queue;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_ack(const json& header) {
    AckRequest ack;
    if (auto error = read_string(header, "durable", ack.durable, true)) return *error;
    if (!valid_cursor_name(ack.durable)) return invalid_cursor_name();
    if (!header.contains("cursor_seq")) return missing("cursor_seq");
    if (auto error = read_unsigned(header, "cursor_seq", ack.cursor_seq)) return *error;
    return ack;
}

[[nodiscard]] std::variant<RequestBody, FieldError> parse_cursor_delete(const json& header) {
    CursorDeleteRequest request;
    if (auto error = read_string(header, "durable", request.durable, true)) return *error;
    if (!valid_cursor_name(request.durable)) return invalid_cursor_name();
    return request;
}

[[nodiscard]] json headers_json(const Headers& headers) {
    json out = json::array();
    for (const auto& [key, value] : headers) out.push_back(json::array({key, value}));
    return out;
}

}  // namespace

std::variant<Request, RequestError> parse_request(const json& header) {
    json id = nullptr;
    if (const auto it = header.find("id"); it != header.end()) {
        if (it->is_object() || it->is_array()) {
            return RequestError{nullptr, invalid("id", "a number or a string")};
        }
        id = *it;
    }
    const auto op_it = header.find("op");
    if (op_it == header.end()) return RequestError{id, missing("op")};
    if (!op_it->is_string()) return RequestError{id, invalid("op", "a string")};
    const auto& op = op_it->get_ref<const std::string&>();

    std::variant<RequestBody, FieldError> parsed = FieldError{};
    if (op == "hello") {
        parsed = parse_hello(header);
    } else if (op == "publish") {
        parsed = parse_publish(header);
    } else if (op == "publish_batch") {
        parsed = parse_publish_batch(header);
    } else if (op == "subscribe") {
        parsed = parse_subscribe(header);
    } else if (op == "status") {
        parsed = RequestBody{StatusRequest{}};
    } else if (op == "stop") {
        parsed = RequestBody{StopRequest{}};
    } else if (op == "reconnect") {
        parsed = RequestBody{ReconnectRequest{}};
    } else if (op == "queue.list" || op == "queue.show" || op == "queue.retry" || op == "queue.drop" ||
               op == "queue.purge" || op == "queue.stats") {
        parsed = parse_queue(op, header);
    } else if (op == "ack") {
        parsed = parse_ack(header);
    } else if (op == "cursor.delete") {
        parsed = parse_cursor_delete(header);
    } else if (op == "cursor.list") {
        parsed = RequestBody{CursorListRequest{}};
    } else {
        return RequestError{id, {LocalReason::unknown_op, fmt::format("unknown op '{}'", op)}};
    }
    if (auto* error = std::get_if<FieldError>(&parsed)) return RequestError{id, std::move(*error)};
    return Request{std::move(id), std::move(std::get<RequestBody>(parsed))};
}

json to_header(const HelloRequest& request) {
    json header{{"op", "hello"}, {"v", request.version}};
    if (!request.client.empty()) header["client"] = request.client;
    return header;
}

json to_header(const PublishRequest& request) {
    json header{{"op", "publish"},
                {"channel", request.channel},
                {"priority", protocol::to_string(request.priority)},
                {"kind", protocol::to_string(request.kind)}};
    if (request.ttl_ms != 0) header["ttl_ms"] = request.ttl_ms;
    if (!request.headers.empty()) header["headers"] = headers_json(request.headers);
    if (request.correlation) header["correlation"] = to_hex(*request.correlation);
    if (request.wait_ack) header["wait_ack"] = true;
    return header;
}

json to_header(const PublishBatchRequest& request) {
    json header = to_header(request.fields);
    header["op"] = "publish_batch";
    header.erase("wait_ack");
    header["lengths"] = request.lengths;
    if (!request.message_ids) header["message_ids"] = false;
    return header;
}

json to_header(const SubscribeRequest& request) {
    json header{{"op", "subscribe"}, {"patterns", request.patterns}};
    if (!request.durable.empty()) header["durable"] = request.durable;
    if (request.reset) header["reset"] = true;
    if (request.batch) header["batch"] = true;
    return header;
}

std::string_view to_string(QueueStateFilter state) {
    switch (state) {
        case QueueStateFilter::waiting: return "waiting";
        case QueueStateFilter::in_flight: return "in_flight";
        case QueueStateFilter::dead: return "dead";
        case QueueStateFilter::all: break;
    }
    return "all";
}

std::optional<QueueStateFilter> parse_state_filter(std::string_view text) {
    for (const auto state :
         {QueueStateFilter::waiting, QueueStateFilter::in_flight, QueueStateFilter::dead, QueueStateFilter::all}) {
        if (to_string(state) == text) return state;
    }
    return std::nullopt;
}

json to_header(const QueueRequest& request) {
    static constexpr std::string_view kOps[] = {"queue.list", "queue.show",  "queue.retry",
                                                "queue.drop", "queue.purge", "queue.stats"};
    json header{{"op", kOps[static_cast<std::size_t>(request.op)]}};
    if (request.op == QueueOp::list) {
        header["state"] = to_string(request.state);
        if (request.limit != 0) header["limit"] = request.limit;
    }
    if (request.message_id) header["message_id"] = to_hex(*request.message_id);
    if (request.dead) header["dead"] = true;
    if (request.all) header["all"] = true;
    if (request.ttl_ms != 0) header["ttl_ms"] = request.ttl_ms;
    return header;
}

json to_header(const AckRequest& request) {
    return json{{"op", "ack"}, {"durable", request.durable}, {"cursor_seq", request.cursor_seq}};
}

json to_header(const CursorDeleteRequest& request) {
    return json{{"op", "cursor.delete"}, {"durable", request.durable}};
}

json to_header(const CursorListRequest& /*request*/) {
    return json{{"op", "cursor.list"}};
}
json to_header(const RequestBody& request) {
    return std::visit([](const auto& typed) { return to_header(typed); }, request);
}
json to_header(const StatusRequest&) {
    return json{{"op", "status"}};
}
json to_header(const StopRequest&) {
    return json{{"op", "stop"}};
}
json to_header(const ReconnectRequest&) {
    return json{{"op", "reconnect"}};
}

json ok_response(const json& id, json fields) {
    fields["id"] = id;
    fields["ok"] = true;
    return fields;
}

json error_response(const json& id, const WireError& error) {
    return json{{"id", id},
                {"ok", false},
                {"error", {{"reason", error.reason}, {"message", error.message}, {"exit", to_int(error.exit)}}}};
}

std::optional<WireError> response_error(const json& header) {
    const auto ok = header.find("ok");
    if (ok != header.end() && ok->is_boolean() && ok->get<bool>()) return std::nullopt;
    WireError out{"bad_request", "the broker sent a malformed response", ExitCode::failure};
    const auto error = header.find("error");
    if (error == header.end() || !error->is_object()) return out;
    try {
        WireError parsed = out;
        parsed.reason = error->value("reason", parsed.reason);
        parsed.message = error->value("message", parsed.message);
        const int code = error->value("exit", to_int(ExitCode::failure));
        parsed.exit =
            (code >= 1 && code <= to_int(ExitCode::bad_input)) ? static_cast<ExitCode>(code) : ExitCode::failure;
        return parsed;
    } catch (const json::exception&) {
        return out;  // members of the wrong type: as malformed as no error object at all
    }
}

namespace {

// Fills `header` with the message event of `envelope`. A header filled before keeps its members
// and only their values change: a stream of deliveries does not allocate every key and every
// string again (that was a quarter of a receiving broker's time).
void fill_message_event(json& header, const protocol::Envelope& envelope) {
    // The messages of a batch share their origin: its two encodings are made once.
    struct OriginText {
        crypto::PublicKey key{};
        std::string fingerprint;
        std::string base64;
    };
    thread_local OriginText origin;
    if (origin.fingerprint.empty() || origin.key != envelope.origin) {
        origin.key = envelope.origin;
        origin.fingerprint = crypto::fingerprint(envelope.origin);
        origin.base64 = crypto::base64_encode(envelope.origin);
    }
    if (!header.is_object() || header.empty()) {
        header = json{{"event", "message"},       {"id", ""},         {"channel", ""},    {"origin_id", ""},
                      {"origin_fingerprint", ""}, {"origin_key", ""}, {"verified", true}, {"sequence", 0},
                      {"timestamp_ms", 0},        {"priority", ""},   {"kind", ""},       {"headers", json::array()}};
    }
    const auto set_text = [&header](const char* key, std::string_view value) {
        auto& text = header[key].get_ref<std::string&>();
        if (text != value) text.assign(value);
    };
    set_text("id", to_hex(envelope.id));
    set_text("channel", envelope.channel);
    set_text("origin_id", envelope.origin_id);
    set_text("origin_fingerprint", origin.fingerprint);
    set_text("origin_key", origin.base64);
    set_text("priority", protocol::to_string(envelope.priority));
    set_text("kind", protocol::to_string(envelope.kind));
    header["sequence"] = envelope.sequence;
    header["timestamp_ms"] = envelope.timestamp_ms;
    if (auto& headers = header["headers"]; !(envelope.headers.empty() && headers.empty()))
        headers = headers_json(envelope.headers);
    if (envelope.expires_ms != 0) {
        header["expires_ms"] = envelope.expires_ms;
    } else {
        header.erase("expires_ms");
    }
    if (envelope.correlation != protocol::MessageId{}) {
        header["correlation"] = to_hex(envelope.correlation);
    } else {
        header.erase("correlation");
    }
}

}  // namespace

json message_event(const protocol::Envelope& envelope) {
    json header;
    fill_message_event(header, envelope);
    return header;
}

Bytes message_frame(const protocol::Envelope& envelope) {
    thread_local json header;
    fill_message_event(header, envelope);
    return encode_frame(header, envelope.payload);
}

std::optional<DeliveredMessage> parse_message_event(const json& header, Bytes payload) {
    DeliveredMessage out;
    try {
        if (header.value("event", std::string()) != "message") return std::nullopt;
        const auto id = message_id_from_hex(header.at("id").get<std::string>());
        if (!id) return std::nullopt;
        out.id = *id;
        out.channel = header.at("channel").get<std::string>();
        out.origin_id = header.value("origin_id", std::string());
        out.origin_fingerprint = header.value("origin_fingerprint", std::string());
        // The messages of a batch share their origin: its key is decoded once (as message_event encodes it).
        struct OriginKey {
            std::string text;
            std::optional<crypto::PublicKey> key;
        };
        thread_local OriginKey origin;
        if (auto text = header.value("origin_key", std::string()); origin.text.empty() || text != origin.text) {
            const auto decoded = crypto::base64_decode(text);
            origin.key.reset();
            if (decoded && decoded->size() == out.origin.size()) {
                origin.key.emplace();
                std::copy(decoded->begin(), decoded->end(), origin.key->begin());
            }
            origin.text = std::move(text);
        }
        if (origin.key) out.origin = *origin.key;
        out.verified = header.value("verified", false);
        out.sequence = header.value("sequence", std::uint64_t{0});
        out.timestamp_ms = header.value("timestamp_ms", std::uint64_t{0});
        out.expires_ms = header.value("expires_ms", std::uint64_t{0});
        out.priority = protocol::parse_priority(header.value("priority", std::string("normal"))).value_or(out.priority);
        out.kind = parse_kind(header.value("kind", std::string("event"))).value_or(out.kind);
        if (const auto it = header.find("correlation"); it != header.end() && it->is_string()) {
            out.correlation = message_id_from_hex(it->get<std::string>());
        }
        if (const auto it = header.find("headers"); it != header.end() && it->is_array()) {
            for (const auto& pair : *it)
                out.headers.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
        }
    } catch (const json::exception&) {
        return std::nullopt;
    }
    out.payload = std::move(payload);
    return out;
}

namespace {

// A message's record in a "messages" event: 64 fixed bytes, its headers and its payload.
constexpr std::size_t kRecordFixedBytes = 16 + 8 + 8 + 8 + 1 + 1 + 16 + 2 + 4;

[[nodiscard]] std::size_t record_bytes(const protocol::Envelope& envelope) {
    std::size_t bytes = kRecordFixedBytes + envelope.payload.size();
    for (const auto& [key, value] : envelope.headers) bytes += 2 + key.size() + 4 + value.size();
    return bytes;
}

void append_record(WireWriter& out, const protocol::Envelope& envelope) {
    out.raw(envelope.id);
    out.u64(envelope.sequence);
    out.u64(envelope.timestamp_ms);
    out.u64(envelope.expires_ms);
    out.u8(static_cast<std::uint8_t>(envelope.priority));
    out.u8(static_cast<std::uint8_t>(envelope.kind));
    out.raw(envelope.correlation);
    out.u16(static_cast<std::uint16_t>(envelope.headers.size()));
    for (const auto& [key, value] : envelope.headers) {
        out.text16(key);
        out.bytes32(as_bytes(value));
    }
    out.bytes32(envelope.payload);
}

[[nodiscard]] json batch_header(const protocol::Envelope& first, std::size_t count) {
    return json{{"event", "messages"},
                {"count", count},
                {"channel", first.channel},
                {"origin_id", first.origin_id},
                {"origin_fingerprint", crypto::fingerprint(first.origin)},
                {"origin_key", crypto::base64_encode(first.origin)},
                {"verified", true}};
}

[[nodiscard]] std::string header_text(const json& header) {
    return header.dump(-1, ' ', false, json::error_handler_t::replace);  // as append_frame
}

// One "messages" frame of envelopes [begin, end), whose records take `records` bytes.
[[nodiscard]] Bytes batch_frame(const std::vector<protocol::Envelope>& envelopes, std::size_t begin, std::size_t end,
                                std::size_t records) {
    const std::string text = header_text(batch_header(envelopes[begin], end - begin));
    WireWriter out;
    out.u32(static_cast<std::uint32_t>(4 + text.size() + records));
    out.u32(static_cast<std::uint32_t>(text.size()));
    out.raw(as_bytes(text));
    for (auto i = begin; i < end; ++i) append_record(out, envelopes[i]);
    return out.take();
}

[[nodiscard]] LocalError malformed_batch(std::string_view what) {
    return {LocalReason::bad_frame, fmt::format("malformed messages event: {}", what)};
}

}  // namespace

std::vector<Bytes> message_batch_frames(const std::vector<protocol::Envelope>& envelopes) {
    std::vector<Bytes> frames;
    if (envelopes.empty()) return frames;
    // The shared fields are the same in every frame of the delivery: their size is known once. A
    // message fits a frame alone (its record is its §5 encoding, and a batch of it fits 17 MiB).
    const std::size_t header_bytes = header_text(batch_header(envelopes.front(), kMaxBatchMessages)).size();
    const std::size_t room = kMaxFrameBytes - 4 - header_bytes;
    std::size_t begin = 0;
    std::size_t records = 0;
    for (std::size_t i = 0; i < envelopes.size(); ++i) {
        const auto bytes = record_bytes(envelopes[i]);
        if (i > begin && (i - begin == kMaxBatchMessages || records + bytes > room)) {
            frames.push_back(batch_frame(envelopes, begin, i, records));
            begin = i;
            records = 0;
        }
        records += bytes;
    }
    if (begin < envelopes.size()) frames.push_back(batch_frame(envelopes, begin, envelopes.size(), records));
    return frames;
}

std::variant<std::vector<DeliveredMessage>, LocalError> parse_message_batch(const json& header, ByteView payload) {
    DeliveredMessage shared;
    std::uint64_t count = 0;
    try {
        if (header.value("event", std::string()) != "messages") return malformed_batch("not a messages event");
        const auto& count_field = header.at("count");
        if (!count_field.is_number_unsigned()) return malformed_batch("count is not an unsigned integer");
        count = count_field.get<std::uint64_t>();
        shared.channel = header.at("channel").get<std::string>();
        shared.origin_id = header.at("origin_id").get<std::string>();
        shared.origin_fingerprint = header.at("origin_fingerprint").get<std::string>();
        const auto key = crypto::base64_decode(header.at("origin_key").get<std::string>());
        if (!key || key->size() != shared.origin.size()) return malformed_batch("origin_key is not an Ed25519 key");
        std::copy(key->begin(), key->end(), shared.origin.begin());
        shared.verified = header.at("verified").get<bool>();
    } catch (const json::exception&) {
        return malformed_batch("a shared field is missing or of the wrong type");
    }
    if (count == 0 || count > kMaxBatchMessages)
        return malformed_batch(fmt::format("count {} is not 1 to {}", count, kMaxBatchMessages));
    std::vector<DeliveredMessage> messages;
    messages.reserve(count);
    WireReader in(payload);
    for (std::uint64_t i = 0; i < count; ++i) {
        auto& message = messages.emplace_back(shared);
        std::uint8_t priority = 0;
        std::uint8_t kind = 0;
        protocol::MessageId correlation{};
        std::uint16_t headers = 0;
        if (!in.raw(message.id) || !in.u64(message.sequence) || !in.u64(message.timestamp_ms) ||
            !in.u64(message.expires_ms) || !in.u8(priority) || !in.u8(kind) || !in.raw(correlation) ||
            !in.u16(headers)) {
            return malformed_batch(fmt::format("message {} of {} is cut short", i + 1, count));
        }
        if (priority > static_cast<std::uint8_t>(protocol::Priority::low) ||
            kind > static_cast<std::uint8_t>(protocol::Kind::heartbeat)) {
            return malformed_batch(fmt::format("message {} has an unknown priority or kind", i + 1));
        }
        if (headers > protocol::kMaxHeaders)
            return malformed_batch(
                fmt::format("message {} has {} headers (at most {})", i + 1, headers, protocol::kMaxHeaders));
        message.priority = static_cast<protocol::Priority>(priority);
        message.kind = static_cast<protocol::Kind>(kind);
        if (correlation != protocol::MessageId{}) message.correlation = correlation;
        message.headers.reserve(headers);
        for (std::uint16_t h = 0; h < headers; ++h) {
            ByteView key;
            ByteView value;
            if (!in.bytes16(key) || !in.bytes32(value))
                return malformed_batch(fmt::format("message {} of {} is cut short", i + 1, count));
            message.headers.emplace_back(std::string(key.begin(), key.end()), std::string(value.begin(), value.end()));
        }
        ByteView body;
        if (!in.bytes32(body)) return malformed_batch(fmt::format("message {} of {} is cut short", i + 1, count));
        message.payload.assign(body.begin(), body.end());
    }
    if (in.remaining() != 0) return malformed_batch(fmt::format("{} bytes after the last message", in.remaining()));
    return messages;
}

bool offers(const json& hello, std::string_view feature) {
    const auto features = hello.find("features");
    if (features == hello.end() || !features->is_array()) return false;
    return std::any_of(features->begin(), features->end(), [feature](const json& listed) {
        return listed.is_string() && listed.get_ref<const std::string&>() == feature;
    });
}

std::string to_hex(const protocol::MessageId& id) {
    return crypto::hex_encode(id);
}

std::optional<protocol::MessageId> message_id_from_hex(std::string_view text) {
    const auto bytes = crypto::hex_decode(text);
    if (!bytes || bytes->size() != protocol::MessageId{}.size()) return std::nullopt;
    protocol::MessageId id{};
    std::copy(bytes->begin(), bytes->end(), id.begin());
    return id;
}

std::optional<protocol::Kind> parse_kind(std::string_view text) {
    for (const auto kind : {protocol::Kind::event, protocol::Kind::request, protocol::Kind::reply, protocol::Kind::ack,
                            protocol::Kind::heartbeat}) {
        if (protocol::to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

bool valid_cursor_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxCursorName) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

}  // namespace aegis::ipc
