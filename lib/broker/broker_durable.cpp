// The state file and durable subscriptions: the queue, the delivered ids and the inboxes of
// named cursors share one database. The cursors themselves (durable_cursors.h) keep their
// patterns in the gateway set while no client is attached, store matching deliveries before
// they are acknowledged, and give an attached client the stored backlog, then live messages;
// here the broker wires them to the subscription changes, its timers and its log.

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "store/sqlite.h"
#include "store/state_database.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

// A client's socket that had no room for more backlog is looked at again after this long.
constexpr std::chrono::milliseconds kBacklogPoll{20};

}  // namespace

Result<void> Broker::Impl::open_state() {
    if (config.state_file.empty()) return make_error(ExitCode::failure, "no state file configured");
    auto opened = store::open_state_database(config.state_file);
    if (!opened) return opened.take_error();
    database = std::move(*opened);
    store::QueueOptions queue_options;
    queue_options.backoff.max_attempts = config.max_attempts;
    auto outbound = store::SqliteOutboundQueue::open(database, config.queue_limits, std::move(queue_options));
    if (!outbound) return outbound.take_error();
    queue = std::move(*outbound);
    auto ids = store::DeliveredIds::open(database);
    if (!ids) return ids.take_error();
    delivered = std::move(*ids);
    auto inboxes = store::DurableInbox::open(database, config.inbox_limits);
    if (!inboxes) return inboxes.take_error();
    durable = std::make_unique<DurableCursors>(std::make_unique<InboxCursorStore>(std::move(*inboxes)),
                                               [weak = weak_from_this()](std::string_view line) {
                                                   if (auto self = weak.lock()) self->log(line);
                                               });
    auto known = durable->load();
    if (!known) return known.take_error();
    if (*known > 0) subscription_changes.cursors_changed();  // the gateway must know them before anyone attaches
    log(fmt::format("state in {}: {} message(s) queued, {} dead letter(s), {} durable subscription(s)",
                    config.state_file.string(), queue->waiting() + queue->in_flight(), queue->dead(), *known));
    return {};
}

std::vector<std::string> Broker::Impl::durable_patterns() const {
    return durable->patterns();
}

void Broker::Impl::handle_durable_subscribe(const std::shared_ptr<ipc::Peer>& peer, const Waiter& waiter,
                                            ipc::SubscribeRequest request) {
    for (const auto& pattern : request.patterns) {
        if (auto valid = channel::validate_pattern(pattern); !valid) {
            fail(waiter,
                 ipc::wire_error(protocol::Reason::invalid_channel, valid.error().message, ExitCode::bad_input));
            return;
        }
        if (policy && !policy->may_subscribe(pattern)) {
            fail(waiter, access_denied(*policy, pattern));
            return;
        }
    }
    auto subscribed = durable->subscribe(waiter, peer->id(), std::move(request), unix_time_ms());
    if (auto* refused = std::get_if<ipc::WireError>(&subscribed)) {
        fail(waiter, *refused);
        return;
    }
    subscription_changes.request(std::get<PendingSubscribe>(std::move(subscribed)));
    advance_subscriptions();
}

void Broker::Impl::attach_durable(const PendingSubscribe& pending) {
    if (durable->attach(pending)) schedule_backlog(pending.durable);
}

void Broker::Impl::refuse_durable(const PendingSubscribe& pending, const ipc::WireError& error) {
    durable->refuse(pending, error, unix_time_ms());
}

void Broker::Impl::send_backlog(const std::string& name) {
    if (durable->send_backlog(name)) schedule_backlog(name);
}

// The client's socket had no room for more: the rest of its backlog goes once it drained.
void Broker::Impl::schedule_backlog(const std::string& name) {
    auto timer = std::make_shared<boost::asio::steady_timer>(io, kBacklogPoll);
    timer->async_wait([weak = weak_from_this(), timer, name](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self || error) return;
        if (self->durable->resume(name)) self->schedule_backlog(name);
    });
}

void Broker::Impl::handle_ack(const Waiter& waiter, const ipc::AckRequest& request) {
    // The acks of one turn are committed at its end, in one transaction.
    if (!durable->ack(waiter, request)) return;
    boost::asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->durable->commit_acks();
    });
}

void Broker::Impl::handle_cursor_list(const Waiter& waiter) {
    durable->list(waiter);
}

void Broker::Impl::handle_cursor_delete(const Waiter& waiter, const ipc::CursorDeleteRequest& request) {
    const auto removed = durable->remove(waiter, request);
    if (!removed) return;
    subscription_changes.cursors_changed();
    advance_subscriptions();
    answer(waiter, json{{"deleted", *removed}});
}

// One transaction for a delivery: the durable cursors' inbox entries and the delivered ids are
// committed together (one sync when an inbox took some), or nothing is, and the inboxes' counts
// and the ids in memory follow (Database::on_outcome).
Result<void> Broker::Impl::store_delivery(const std::vector<protocol::Envelope>& fresh) {
    if (fresh.empty()) return {};
    auto stored = [&]() -> Result<void> {
        auto transaction = database->begin(store::Durability::process_crash);
        if (!transaction) return transaction.take_error();
        if (auto inboxes = durable->store(fresh); !inboxes) return inboxes;
        if (auto ids = delivered->flush(); !ids) return ids;
        return transaction->commit();
    }();
    auto drops = durable->take_dropped();  // dropped only if the delivery was stored
    if (!stored) return stored;
    for (const auto& [name, dropped_now] : drops) report_cursor_full(name, dropped_now);
    return {};
}

// A full inbox drops at every delivery while its client is away: one line per cursor per minute,
// the drops in between counted into the next line (or into one once the minute is over).
void Broker::Impl::report_cursor_full(const std::string& name, std::uint64_t dropped_now) {
    if (const auto total = cursor_full_lines.note(name, dropped_now, std::chrono::steady_clock::now())) {
        log(fmt::format("durable subscription {}: inbox full, {} oldest message(s) dropped", name, *total));
    }
    schedule_cursor_full_report();
}

void Broker::Impl::schedule_cursor_full_report() {
    const auto due = cursor_full_lines.next_due();
    if (!due || cursor_full_timer_scheduled || stopping) return;
    cursor_full_timer_scheduled = true;
    cursor_full_timer.expires_at(*due);
    cursor_full_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self) return;
        self->cursor_full_timer_scheduled = false;
        if (error) return;
        for (const auto& [name, count] : self->cursor_full_lines.due(std::chrono::steady_clock::now())) {
            self->log(
                fmt::format("durable subscription {}: inbox full, {} more oldest message(s) dropped in the last "
                            "minute",
                            name, count));
        }
        self->schedule_cursor_full_report();
    });
}

void Broker::Impl::forget_durable(std::uint64_t peer_id) {
    durable->detach(peer_id);
}

}  // namespace aegis::broker
