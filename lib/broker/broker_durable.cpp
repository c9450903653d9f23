// The state file and durable subscriptions: the queue, the delivered ids and the inboxes of
// named cursors share one database. A cursor's patterns stay in the gateway set while no client
// is attached; matching deliveries are stored in its inbox before they are acknowledged, and
// an attached client gets the stored backlog, then live messages, and advances with "ack".

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "store/state_database.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

constexpr std::size_t kBacklogChunk = 512;
// Backlog is given to a client's socket while less than this waits to be written.
constexpr std::size_t kBacklogWindowBytes = 4 * 1024 * 1024;
constexpr std::chrono::milliseconds kBacklogPoll{20};

[[nodiscard]] ipc::WireError no_cursor(const std::string& name) {
    return ipc::wire_error(ipc::LocalReason::not_found, fmt::format("no durable subscription named {}", name),
                           ExitCode::failure);
}

[[nodiscard]] std::vector<std::string> as_set(std::vector<std::string> patterns) {
    std::sort(patterns.begin(), patterns.end());
    patterns.erase(std::unique(patterns.begin(), patterns.end()), patterns.end());
    return patterns;
}

[[nodiscard]] std::optional<ipc::WireError> busy(const std::string& name, const DurableAttachment* attachment) {
    if (attachment == nullptr) return std::nullopt;
    auto other = attachment->peer.lock();
    if (!other || !other->is_open()) return std::nullopt;
    return ipc::wire_error(
        ipc::LocalReason::cursor_busy,
        fmt::format("durable subscription {} is already attached to another client (pid {})", name, other->pid()),
        ExitCode::failure);
}

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
    inbox = std::move(*inboxes);
    auto known = inbox->cursors();
    if (!known) return known.take_error();
    for (auto& cursor : *known) cursors[cursor.name] = std::move(cursor.patterns);
    if (!cursors.empty()) subscription_changes.cursors_changed();  // the gateway must know them before anyone attaches
    log(fmt::format("state in {}: {} message(s) queued, {} dead letter(s), {} durable subscription(s)",
                    config.state_file.string(), queue->waiting() + queue->in_flight(), queue->dead(), cursors.size()));
    return {};
}

std::vector<std::string> Broker::Impl::durable_patterns() const {
    std::vector<std::string> out;
    for (const auto& [name, patterns] : cursors) out.insert(out.end(), patterns.begin(), patterns.end());
    return out;
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
            fail(waiter, ipc::wire_error(protocol::Reason::access_denied,
                                         fmt::format("access denied: {} ({}) may not subscribe to {}", policy->id(),
                                                     to_string(policy->role()), pattern),
                                         ExitCode::refused));
            return;
        }
    }
    if (const auto it = attached.find(request.durable); it != attached.end()) {
        if (auto refused = busy(request.durable, &it->second)) {
            fail(waiter, *refused);
            return;
        }
        attached.erase(it);
    }
    // A changed set would silently miss what matched only the old patterns: changed on request only.
    if (const auto it = cursors.find(request.durable);
        it != cursors.end() && !request.reset && as_set(it->second) != as_set(request.patterns)) {
        fail(waiter,
             ipc::wire_error(ipc::LocalReason::patterns_differ,
                             fmt::format("durable subscription {} has the patterns {}; reset it to replace them "
                                         "with {}",
                                         request.durable, fmt::join(it->second, " "), fmt::join(request.patterns, " ")),
                             ExitCode::usage));
        return;
    }
    PendingSubscribe pending{waiter, peer->id(), request.patterns, request.durable, std::nullopt};
    if (const auto it = cursors.find(request.durable); it != cursors.end()) pending.previous = it->second;
    if (auto created = inbox->create_cursor(request.durable, request.patterns, unix_time_ms()); !created) {
        fail(waiter, ipc::to_wire(created.error()));
        return;
    }
    cursors[request.durable] = std::move(request.patterns);
    subscription_changes.request(std::move(pending));
    advance_subscriptions();
}

void Broker::Impl::attach_durable(const PendingSubscribe& pending) {
    auto info = inbox->cursor(pending.durable);
    if (!info || !*info) {
        fail(pending.waiter, info ? no_cursor(pending.durable) : ipc::to_wire(info.error()));
        return;
    }
    DurableAttachment attachment;
    attachment.peer_id = pending.peer_id;
    attachment.peer = pending.waiter.peer;
    attachment.sent_up_to = (*info)->position;
    attached[pending.durable] = attachment;
    log(fmt::format("durable subscription {} attached ({} stored message(s))", pending.durable, (*info)->pending));
    answer(pending.waiter, json{{"patterns", pending.patterns}, {"backlog", (*info)->pending}});
    send_backlog(pending.durable);
}

void Broker::Impl::refuse_durable(const PendingSubscribe& pending, const ipc::WireError& error) {
    // Keep no patterns the gateway refused: they would spoil every later subscription set.
    if (pending.previous) {
        cursors[pending.durable] = *pending.previous;
        (void)inbox->create_cursor(pending.durable, *pending.previous, unix_time_ms());
    } else {
        cursors.erase(pending.durable);
        (void)inbox->remove_cursor(pending.durable);
    }
    fail(pending.waiter, error);
}

void Broker::Impl::send_backlog(const std::string& name) {
    const auto it = attached.find(name);
    if (it == attached.end()) return;
    auto& attachment = it->second;
    const auto peer = attachment.peer.lock();
    if (!peer || !peer->is_open()) {
        attached.erase(it);
        return;
    }
    while (peer->queued_bytes() < kBacklogWindowBytes) {
        auto items = inbox->read_after(name, attachment.sent_up_to, kBacklogChunk);
        if (!items) {
            log(fmt::format("cannot read durable subscription {}: {}", name, items.error().message));
            return;
        }
        for (auto& item : *items) {
            auto decoded = ipc::decode_frame(item.envelope);
            auto* frame = std::get_if<ipc::Frame>(&decoded);
            attachment.sent_up_to = item.sequence;
            if (frame == nullptr) continue;
            frame->header["cursor_seq"] = item.sequence;
            if (peer->send(frame->header, frame->payload)) ++delivered_local;
        }
        if (items->size() < kBacklogChunk) {
            if (!attachment.caught_up) {
                attachment.caught_up = true;
                peer->send(json{{"event", "caught_up"}, {"durable", name}, {"cursor_seq", attachment.sent_up_to}});
            }
            return;
        }
    }
    if (attachment.resume_scheduled) return;
    attachment.resume_scheduled = true;
    auto timer = std::make_shared<boost::asio::steady_timer>(io, kBacklogPoll);
    timer->async_wait([weak = weak_from_this(), timer, name](const boost::system::error_code& error) {
        auto self = weak.lock();
        if (!self || error) return;
        if (auto found = self->attached.find(name); found != self->attached.end()) {
            found->second.resume_scheduled = false;
            self->send_backlog(name);
        }
    });
}

void Broker::Impl::handle_ack(const Waiter& waiter, const ipc::AckRequest& request) {
    if (cursors.count(request.durable) == 0) {
        fail(waiter, no_cursor(request.durable));
        return;
    }
    // A client may pipeline its acks: those that arrive together are committed in one
    // transaction at the end of this turn, and each is answered only after that commit.
    auto& [position, waiters] = pending_acks[request.durable];
    position = std::max(position, request.cursor_seq);
    waiters.push_back(waiter);
    if (acks_posted) return;
    acks_posted = true;
    boost::asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->commit_acks();
    });
}

void Broker::Impl::commit_acks() {
    acks_posted = false;
    auto acks = std::move(pending_acks);
    pending_acks.clear();
    for (const auto& [name, ack] : acks) {
        const auto advanced = inbox->advance(name, ack.first);
        for (const auto& waiter : ack.second) {
            if (advanced) {
                answer(waiter, json::object());
            } else {
                fail(waiter, ipc::to_wire(advanced.error()));
            }
        }
    }
}

void Broker::Impl::handle_cursor_list(const Waiter& waiter) {
    auto known = inbox->cursors();
    if (!known) {
        fail(waiter, ipc::to_wire(known.error()));
        return;
    }
    json list = json::array();
    for (const auto& cursor : *known) {
        const auto it = attached.find(cursor.name);
        list.push_back(json{{"name", cursor.name},
                            {"patterns", cursor.patterns},
                            {"pending", cursor.pending},
                            {"dropped", cursor.dropped},
                            {"position", cursor.position},
                            {"created_ms", cursor.created_ms},
                            {"attached", busy(cursor.name, it == attached.end() ? nullptr : &it->second).has_value()}});
    }
    answer(waiter, json{{"cursors", std::move(list)}});
}

void Broker::Impl::handle_cursor_delete(const Waiter& waiter, const ipc::CursorDeleteRequest& request) {
    // Its client would wait on, unanswered, for messages that no longer come.
    if (const auto it = attached.find(request.durable); it != attached.end()) {
        if (auto refused = busy(request.durable, &it->second)) {
            fail(waiter, *refused);
            return;
        }
    }
    auto removed = inbox->remove_cursor(request.durable);
    if (!removed) {
        fail(waiter, ipc::to_wire(removed.error()));
        return;
    }
    cursors.erase(request.durable);
    attached.erase(request.durable);
    if (*removed) log(fmt::format("durable subscription {} deleted", request.durable));
    subscription_changes.cursors_changed();
    advance_subscriptions();
    answer(waiter, json{{"deleted", *removed}});
}

Result<void> Broker::Impl::store_for_cursors(const std::vector<protocol::Envelope>& envelopes) {
    if (cursors.empty() || envelopes.empty()) return {};
    for (const auto& [name, patterns] : cursors) {
        std::vector<store::InboxEntry> entries;
        for (const auto& envelope : envelopes) {
            const bool wanted = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
                return channel::matches(pattern, envelope.channel);
            });
            if (!wanted) continue;
            entries.push_back(store::InboxEntry{envelope.id, envelope.channel, ipc::message_frame(envelope)});
        }
        if (entries.empty()) continue;
        const auto before = inbox->pending(name);
        auto appended = inbox->append({name}, entries);
        if (!appended) return appended.take_error();
        if (const auto kept = inbox->pending(name); before + *appended > kept) {
            report_cursor_full(name, before + *appended - kept);
        }
    }
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
    for (auto it = attached.begin(); it != attached.end();) {
        if (it->second.peer_id == peer_id) {
            log(fmt::format("durable subscription {} detached; storing for it", it->first));
            it = attached.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace aegis::broker
