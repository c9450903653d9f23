#pragma once
// The requests, responses and events of the local socket protocol (PROTOCOL-local.md §8.3-8.6)
// as typed values, and their JSON headers. The broker parses requests with parse_request; the
// tools build them with to_header and read events with parse_message_event.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/bytes.h"
#include "ipc/codec.h"
#include "ipc/errors.h"
#include "protocol/envelope.h"

namespace aegis::ipc {

using Headers = std::vector<std::pair<std::string, std::string>>;

// A durable cursor's name: 1 to kMaxCursorName characters of [A-Za-z0-9_.-], a file-name-like
// token, so it shows cleanly in logs and listings.
inline constexpr std::size_t kMaxCursorName = 128;
[[nodiscard]] bool valid_cursor_name(std::string_view name);

struct HelloRequest {
    int version = kVersion;
    std::string client;  // the tool's name, for the broker's log
};

struct PublishRequest {
    std::string channel;
    protocol::Priority priority = protocol::Priority::normal;
    std::uint64_t ttl_ms = 0;  // 0: no expiry
    Headers headers;
    protocol::Kind kind = protocol::Kind::event;
    std::optional<protocol::MessageId> correlation;
    bool wait_ack = false;  // answer once the gateway stored it, not once it is queued
};

// Several messages with the same fields in one frame (publish_batch): the frame's payload is
// their payloads back to back, `lengths` says where each ends. Brokers that take it say so in
// their hello answer (kPublishBatchFeature); a batch never waits for the gateway's ack.
struct PublishBatchRequest {
    PublishRequest fields;  // wait_ack is false
    std::vector<std::uint32_t> lengths;
    bool message_ids = true;  // false: answered with the count only, for a client that shows no ids
};
inline constexpr std::size_t kMaxBatchMessages = 4096;
inline constexpr std::string_view kPublishBatchFeature = "publish_batch";

struct SubscribeRequest {
    std::vector<std::string> patterns;
    std::string durable;  // a durable cursor's name; empty: a live subscription
    bool reset = false;   // durable: replace the cursor's stored patterns when they differ
    bool batch = false;   // live messages as "messages" events (kMessageBatchFeature), when offered
};

struct StatusRequest {};
struct StopRequest {};
// Ends the wait of a broker backing off (or refused): it tries to connect now.
struct ReconnectRequest {};

// The operator's queue operations (queue.list, queue.show, ...).
enum class QueueOp : std::uint8_t { list, show, retry, drop, purge, stats };
enum class QueueStateFilter : std::uint8_t { waiting, in_flight, dead, all };

struct QueueRequest {
    QueueOp op = QueueOp::stats;
    QueueStateFilter state = QueueStateFilter::all;  // list
    std::uint64_t limit = 0;                         // list; 0: no limit
    std::optional<protocol::MessageId> message_id;   // show, retry, drop
    bool dead = false;                               // retry, purge: every dead letter
    bool all = false;                                // purge: everything
    std::uint64_t ttl_ms = 0;                        // retry: a fresh TTL for expired messages; 0: none
};

// The client wrote every message of cursor `durable` up to `cursor_seq`.
struct AckRequest {
    std::string durable;
    std::uint64_t cursor_seq = 0;
};

struct CursorDeleteRequest {
    std::string durable;
};

// Every durable cursor of the state file (cursor.list).
struct CursorListRequest {};

using RequestBody =
    std::variant<HelloRequest, PublishRequest, PublishBatchRequest, SubscribeRequest, StatusRequest, StopRequest,
                 QueueRequest, AckRequest, CursorDeleteRequest, CursorListRequest, ReconnectRequest>;

struct Request {
    nlohmann::json id;  // echoed in the response; null when the request had none
    RequestBody body;
};

// A request header (the payload is the publish payload). The id is kept even on error, so the
// error response can echo it.
struct RequestError {
    nlohmann::json id;
    LocalError error;
};
[[nodiscard]] std::variant<Request, RequestError> parse_request(const nlohmann::json& header);

[[nodiscard]] nlohmann::json to_header(const HelloRequest& request);
[[nodiscard]] nlohmann::json to_header(const PublishRequest& request);
[[nodiscard]] nlohmann::json to_header(const PublishBatchRequest& request);
[[nodiscard]] nlohmann::json to_header(const SubscribeRequest& request);
[[nodiscard]] nlohmann::json to_header(const StatusRequest& request);
[[nodiscard]] nlohmann::json to_header(const StopRequest& request);
[[nodiscard]] nlohmann::json to_header(const ReconnectRequest& request);
[[nodiscard]] nlohmann::json to_header(const QueueRequest& request);
[[nodiscard]] nlohmann::json to_header(const AckRequest& request);
[[nodiscard]] nlohmann::json to_header(const CursorDeleteRequest& request);
[[nodiscard]] nlohmann::json to_header(const CursorListRequest& request);
// Any request, by its type: what a tool sends (a command's typed request, whichever it is).
[[nodiscard]] nlohmann::json to_header(const RequestBody& request);
[[nodiscard]] std::string_view to_string(QueueStateFilter state);
// "waiting", "in_flight", "dead" or "all"; nullopt for another word.
[[nodiscard]] std::optional<QueueStateFilter> parse_state_filter(std::string_view text);

// {"id": id, "ok": true, ...fields}
[[nodiscard]] nlohmann::json ok_response(const nlohmann::json& id, nlohmann::json fields = nlohmann::json::object());
// {"id": id, "ok": false, "error": {"reason", "message", "exit"}}
[[nodiscard]] nlohmann::json error_response(const nlohmann::json& id, const WireError& error);
// The error object of a response, when it is one (ok false); a malformed one reads as bad_request.
[[nodiscard]] std::optional<WireError> response_error(const nlohmann::json& header);

// A message delivered to a subscriber: every envelope field, its origin verified by the broker.
struct DeliveredMessage {
    protocol::MessageId id{};
    std::string channel;
    std::string origin_id;
    std::string origin_fingerprint;
    crypto::PublicKey origin{};
    bool verified = false;
    std::uint64_t sequence = 0;
    std::uint64_t timestamp_ms = 0;
    std::uint64_t expires_ms = 0;
    protocol::Priority priority = protocol::Priority::normal;
    protocol::Kind kind = protocol::Kind::event;
    std::optional<protocol::MessageId> correlation;
    Headers headers;
    Bytes payload;
};

// {"event": "message", "id": hex, "channel", ...}; the payload goes in the frame's payload.
[[nodiscard]] nlohmann::json message_event(const protocol::Envelope& envelope);
// The event's whole frame (header and payload), as a broker sends it to its subscribers.
[[nodiscard]] Bytes message_frame(const protocol::Envelope& envelope);
// The event as a subscriber reads it; nullopt when the header is not a message event.
[[nodiscard]] std::optional<DeliveredMessage> parse_message_event(const nlohmann::json& header, Bytes payload);

// The "messages" event (PROTOCOL.md §8.4): the messages of one delivery that share their channel
// and origin, those fields once in the JSON header, then per message its own fields, its length
// and its payload back to back in the frame's payload. Sent to a subscriber that asked for it
// (SubscribeRequest::batch) by a broker whose hello lists kMessageBatchFeature.
inline constexpr std::string_view kMessageBatchFeature = "message_batch";
// The frames of `envelopes` (one channel and origin) for a batch subscriber: "messages" events of
// at most kMaxBatchMessages messages each, split to keep within the frame limit.
[[nodiscard]] std::vector<Bytes> message_batch_frames(const std::vector<protocol::Envelope>& envelopes);
// The messages of a "messages" event, in order; bad_frame when the payload does not match the
// header (a length past the end, bytes left over, a count out of bounds, an unknown code).
[[nodiscard]] std::variant<std::vector<DeliveredMessage>, LocalError> parse_message_batch(const nlohmann::json& header,
                                                                                          ByteView payload);
// True when the broker's hello answer lists `feature`.
[[nodiscard]] bool offers(const nlohmann::json& hello, std::string_view feature);

[[nodiscard]] std::string to_hex(const protocol::MessageId& id);
[[nodiscard]] std::optional<protocol::MessageId> message_id_from_hex(std::string_view text);
[[nodiscard]] std::optional<protocol::Kind> parse_kind(std::string_view text);

}  // namespace aegis::ipc
