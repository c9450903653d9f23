// The operator's view of the outbound queue (aegis-queue): list, show, retry, drop, purge and
// stats, answered from the broker's own SqliteOutboundQueue so its counters stay right.

#include <fmt/format.h>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "store/state_database.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

[[nodiscard]] ipc::WireError not_found(const protocol::MessageId& id) {
    return ipc::wire_error(ipc::LocalReason::not_found, fmt::format("no message {} in the queue", ipc::to_hex(id)),
                           ExitCode::failure);
}

[[nodiscard]] std::optional<store::MessageState> state_of(ipc::QueueStateFilter filter) {
    switch (filter) {
        case ipc::QueueStateFilter::waiting: return store::MessageState::waiting;
        case ipc::QueueStateFilter::in_flight: return store::MessageState::in_flight;
        case ipc::QueueStateFilter::dead: return store::MessageState::dead;
        case ipc::QueueStateFilter::all: break;
    }
    return std::nullopt;
}

[[nodiscard]] json entry_json(const store::QueueEntry& entry) {
    return json{{"message_id", ipc::to_hex(entry.id)},
                {"channel", entry.channel},
                {"priority", protocol::to_string(entry.priority)},
                {"attempts", entry.attempts},
                {"created_ms", entry.timestamp_ms},
                {"next_attempt_ms", entry.next_attempt_ms},
                {"state", store::to_string(entry.state)},
                {"dead_reason", entry.state == store::MessageState::dead ? json(entry.dead_reason) : json(nullptr)},
                {"bytes", entry.payload_bytes}};
}

[[nodiscard]] json headers_object(const std::vector<std::pair<std::string, std::string>>& headers) {
    json out = json::object();
    for (const auto& [key, value] : headers) out[key] = value;
    return out;
}

}  // namespace

// A removed message will never be acknowledged: whoever waits for its ack is told at once.
void Broker::Impl::fail_dropped(const std::vector<protocol::MessageId>& ids) {
    for (const auto& id : ids) {
        if (auto waiter = outbound_flow.take_waiter(id)) {
            fail(*waiter,
                 ipc::wire_error(ipc::LocalReason::dropped,
                                 fmt::format("message {} was dropped from the queue by the operator", ipc::to_hex(id)),
                                 ExitCode::refused));
        }
    }
}

json Broker::Impl::queue_status() const {
    json out{{"waiting", queue->waiting()},
             {"in_flight", queue->in_flight()},
             {"dead", queue->dead()},
             {"bytes", queue->live_bytes()},
             {"oldest_waiting_ms", 0},
             {"max_messages", queue->limits().max_messages},
             {"max_bytes", queue->limits().max_bytes}};
    if (auto stats = queue->stats()) out["oldest_waiting_ms"] = stats->oldest_waiting_ms;
    return out;
}

void Broker::Impl::handle_queue_op(const Waiter& waiter, const ipc::QueueRequest& request) {
    const auto failed = [&](const Error& error) { fail(waiter, ipc::to_wire(error)); };
    expire_due();  // what the operator is shown is as it is now, session or not
    const auto now = unix_time_ms();
    switch (request.op) {
        case ipc::QueueOp::list: {
            auto entries = queue->list(state_of(request.state), static_cast<std::size_t>(request.limit));
            if (!entries) return failed(entries.error());
            json messages = json::array();
            for (const auto& entry : *entries) {
                messages.push_back(entry_json(entry));
                if (entry.state == store::MessageState::waiting) note_held(messages.back(), entry.channel);
            }
            return answer(waiter, json{{"messages", std::move(messages)}});
        }
        case ipc::QueueOp::show: {
            auto stored = queue->get(*request.message_id);
            if (!stored) return failed(stored.error());
            if (!*stored) return fail(waiter, not_found(*request.message_id));
            const auto& [entry, message] = **stored;
            auto fields = entry_json(entry);
            fields["headers"] = headers_object(message.headers);
            fields["expires_ms"] = entry.expires_ms;
            fields["kind"] = protocol::to_string(entry.kind);
            if (entry.state == store::MessageState::dead) fields["dead_at_ms"] = entry.dead_at_ms;
            if (entry.state == store::MessageState::waiting) note_held(fields, entry.channel);
            if (auto peer = waiter.peer.lock()) {
                peer->send(ipc::ok_response(waiter.request_id, json{{"message", std::move(fields)}}), message.payload);
            }
            return;
        }
        case ipc::QueueOp::retry: {
            if (request.dead) {
                auto retried = queue->retry_dead(now, request.ttl_ms);
                if (!retried) return failed(retried.error());
                pump();
                return answer(waiter, json{{"count", retried->count}, {"expired", retried->expired}});
            }
            auto existing = queue->get(*request.message_id);
            if (!existing) return failed(existing.error());
            if (!*existing) return fail(waiter, not_found(*request.message_id));
            const auto expires_ms = (*existing)->entry.expires_ms;
            if (expires_ms != 0 && expires_ms <= now && request.ttl_ms == 0) {
                return fail(waiter,
                            ipc::wire_error(protocol::Reason::expired,
                                            fmt::format("message {} expired {} s ago: retried, it would only "
                                                        "expire again",
                                                        ipc::to_hex(*request.message_id), (now - expires_ms) / 1000),
                                            ExitCode::refused));
            }
            if (auto retried = queue->retry(*request.message_id, now, request.ttl_ms); !retried)
                return failed(retried.error());
            pump();
            return answer(waiter, json{{"count", 1}});
        }
        case ipc::QueueOp::drop: {
            auto existing = queue->get(*request.message_id);
            if (!existing) return failed(existing.error());
            if (!*existing) return fail(waiter, not_found(*request.message_id));
            if (auto removed = queue->remove(*request.message_id); !removed) return failed(removed.error());
            log(fmt::format("message {} dropped by the operator", ipc::to_hex(*request.message_id)));
            fail_dropped({*request.message_id});
            return answer(waiter, json{{"count", 1}});
        }
        case ipc::QueueOp::purge: {
            auto count = request.all ? queue->purge_all() : queue->purge_dead();
            if (!count) return failed(count.error());
            if (request.all) {
                // Nothing in flight is known any more: its pubacks are ignored.
                outbound_flow.clear_window();
                fail_dropped(outbound_flow.awaited());
            }
            log(fmt::format("{} message(s) purged by the operator", *count));
            return answer(waiter, json{{"count", *count}});
        }
        case ipc::QueueOp::stats: return answer(waiter, json{{"stats", queue_status()}});
    }
}

Result<void> check_state_file(const std::filesystem::path& file) {
    auto database = store::open_state_database(file);
    if (!database) return database.take_error();
    auto queue = store::SqliteOutboundQueue::open(*database, store::QueueLimits{});
    if (!queue) return queue.take_error();
    auto delivered = store::DeliveredIds::open(*database);
    if (!delivered) return delivered.take_error();
    auto inbox = store::DurableInbox::open(*database);
    if (!inbox) return inbox.take_error();
    return {};
}

}  // namespace aegis::broker
