#include "broker/durable_cursors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "channel/channel.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

[[nodiscard]] ipc::WireError no_cursor(const std::string& name) {
    return ipc::wire_error(ipc::LocalReason::not_found, fmt::format("no durable subscription named {}", name),
                           ExitCode::failure);
}

[[nodiscard]] std::vector<std::string> as_set(std::vector<std::string> patterns) {
    std::sort(patterns.begin(), patterns.end());
    patterns.erase(std::unique(patterns.begin(), patterns.end()), patterns.end());
    return patterns;
}

// The cursor is read by another client that is still connected.
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

Result<std::size_t> DurableCursors::load() {
    auto known = store_->cursors();
    if (!known) return known.take_error();
    for (auto& cursor : *known) cursors_[cursor.name] = std::move(cursor.patterns);
    return cursors_.size();
}

std::vector<std::string> DurableCursors::patterns() const {
    std::vector<std::string> out;
    for (const auto& [name, patterns] : cursors_) out.insert(out.end(), patterns.begin(), patterns.end());
    return out;
}

std::variant<PendingSubscribe, ipc::WireError> DurableCursors::subscribe(const Waiter& waiter, std::uint64_t peer_id,
                                                                         ipc::SubscribeRequest request,
                                                                         std::uint64_t now_ms) {
    if (const auto it = attached_.find(request.durable); it != attached_.end()) {
        if (auto refused = busy(request.durable, &it->second)) return *refused;
        attached_.erase(it);
    }
    const auto it = cursors_.find(request.durable);
    // A changed set would silently miss what matched only the old patterns: changed on request only.
    if (it != cursors_.end() && !request.reset && as_set(it->second) != as_set(request.patterns)) {
        return ipc::wire_error(
            ipc::LocalReason::patterns_differ,
            fmt::format("durable subscription {} has the patterns {}; reset it to replace them "
                        "with {}",
                        request.durable, fmt::join(it->second, " "), fmt::join(request.patterns, " ")),
            ExitCode::usage);
    }
    PendingSubscribe pending{waiter, peer_id, request.patterns, request.durable, std::nullopt};
    if (it != cursors_.end()) pending.previous = it->second;
    if (auto created = store_->create_cursor(request.durable, request.patterns, now_ms); !created) {
        return ipc::to_wire(created.error());
    }
    cursors_[request.durable] = std::move(request.patterns);
    return pending;
}

bool DurableCursors::attach(const PendingSubscribe& pending) {
    auto info = store_->cursor(pending.durable);
    if (!info || !*info) {
        fail(pending.waiter, info ? no_cursor(pending.durable) : ipc::to_wire(info.error()));
        return false;
    }
    DurableAttachment attachment;
    attachment.peer_id = pending.peer_id;
    attachment.peer = pending.waiter.peer;
    attachment.sent_up_to = (*info)->position;
    attached_[pending.durable] = attachment;
    log(fmt::format("durable subscription {} attached ({} stored message(s))", pending.durable, (*info)->pending));
    answer(pending.waiter, json{{"patterns", pending.patterns}, {"backlog", (*info)->pending}});
    return send_backlog(pending.durable);
}

void DurableCursors::refuse(const PendingSubscribe& pending, const ipc::WireError& error, std::uint64_t now_ms) {
    // Keep no patterns the gateway refused: they would spoil every later subscription set.
    if (pending.previous) {
        cursors_[pending.durable] = *pending.previous;
        (void)store_->create_cursor(pending.durable, *pending.previous, now_ms);
    } else {
        cursors_.erase(pending.durable);
        (void)store_->remove_cursor(pending.durable);
    }
    fail(pending.waiter, error);
}

void DurableCursors::detach(std::uint64_t peer_id) {
    for (auto it = attached_.begin(); it != attached_.end();) {
        if (it->second.peer_id == peer_id) {
            log(fmt::format("durable subscription {} detached; storing for it", it->first));
            it = attached_.erase(it);
        } else {
            ++it;
        }
    }
}

Result<void> DurableCursors::store(const std::vector<protocol::Envelope>& envelopes) {
    if (cursors_.empty() || envelopes.empty()) return {};
    for (const auto& [name, patterns] : cursors_) {
        std::vector<store::InboxEntry> entries;
        for (const auto& envelope : envelopes) {
            const bool wanted = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
                return channel::matches(pattern, envelope.channel);
            });
            if (!wanted) continue;
            entries.push_back(store::InboxEntry{envelope.id, envelope.channel, ipc::message_frame(envelope)});
        }
        if (entries.empty()) continue;
        const auto before = store_->pending(name);
        auto appended = store_->append({name}, entries);
        if (!appended) return appended.take_error();
        if (const auto kept = store_->pending(name); before + *appended > kept) {
            dropped_.emplace_back(name, before + *appended - kept);
        }
    }
    return {};
}

std::vector<std::string> DurableCursors::attached() const {
    std::vector<std::string> names;
    for (const auto& [name, attachment] : attached_) names.push_back(name);
    return names;
}

bool DurableCursors::send_backlog(const std::string& name) {
    const auto it = attached_.find(name);
    if (it == attached_.end()) return false;
    auto& attachment = it->second;
    const auto peer = attachment.peer.lock();
    if (!peer || !peer->is_open()) {
        attached_.erase(it);
        return false;
    }
    while (peer->queued_bytes() < kBacklogWindowBytes) {
        auto items = store_->read_after(name, attachment.sent_up_to, kBacklogChunk);
        if (!items) {
            log(fmt::format("cannot read durable subscription {}: {}", name, items.error().message));
            return false;
        }
        for (auto& item : *items) {
            auto decoded = ipc::decode_frame(item.envelope, ipc::kMaxEventFrameBytes, ipc::kMaxEventHeaderBytes);
            auto* frame = std::get_if<ipc::Frame>(&decoded);
            attachment.sent_up_to = item.sequence;
            if (frame == nullptr) continue;
            frame->header["cursor_seq"] = item.sequence;
            if (peer->send(frame->header, frame->payload)) ++delivered_;
        }
        if (items->size() < kBacklogChunk) {
            if (!attachment.caught_up) {
                attachment.caught_up = true;
                peer->send(json{{"event", "caught_up"}, {"durable", name}, {"cursor_seq", attachment.sent_up_to}});
            }
            return false;
        }
    }
    if (attachment.resume_scheduled) return false;
    attachment.resume_scheduled = true;
    return true;
}

bool DurableCursors::resume(const std::string& name) {
    const auto it = attached_.find(name);
    if (it == attached_.end()) return false;
    it->second.resume_scheduled = false;
    return send_backlog(name);
}

bool DurableCursors::ack(const Waiter& waiter, const ipc::AckRequest& request) {
    if (cursors_.count(request.durable) == 0) {
        fail(waiter, no_cursor(request.durable));
        return false;
    }
    // A client may pipeline its acks: those that arrive together are committed in one
    // transaction, and each is answered only after that commit.
    const bool first = pending_acks_.empty();
    auto& [position, waiters] = pending_acks_[request.durable];
    position = std::max(position, request.cursor_seq);
    waiters.push_back(waiter);
    return first;
}

void DurableCursors::commit_acks() {
    auto acks = std::move(pending_acks_);
    pending_acks_.clear();
    for (const auto& [name, ack] : acks) {
        const auto advanced = store_->advance(name, ack.first);
        for (const auto& waiter : ack.second) {
            if (advanced) {
                answer(waiter, json::object());
            } else {
                fail(waiter, ipc::to_wire(advanced.error()));
            }
        }
    }
}

void DurableCursors::list(const Waiter& waiter) const {
    auto known = store_->cursors();
    if (!known) {
        fail(waiter, ipc::to_wire(known.error()));
        return;
    }
    json list = json::array();
    for (const auto& cursor : *known) {
        const auto it = attached_.find(cursor.name);
        list.push_back(
            json{{"name", cursor.name},
                 {"patterns", cursor.patterns},
                 {"pending", cursor.pending},
                 {"dropped", cursor.dropped},
                 {"position", cursor.position},
                 {"created_ms", cursor.created_ms},
                 {"attached", busy(cursor.name, it == attached_.end() ? nullptr : &it->second).has_value()}});
    }
    answer(waiter, json{{"cursors", std::move(list)}});
}

std::optional<bool> DurableCursors::remove(const Waiter& waiter, const ipc::CursorDeleteRequest& request) {
    // Its client would wait on, unanswered, for messages that no longer come.
    if (const auto it = attached_.find(request.durable); it != attached_.end()) {
        if (auto refused = busy(request.durable, &it->second)) {
            fail(waiter, *refused);
            return std::nullopt;
        }
    }
    auto removed = store_->remove_cursor(request.durable);
    if (!removed) {
        fail(waiter, ipc::to_wire(removed.error()));
        return std::nullopt;
    }
    cursors_.erase(request.durable);
    attached_.erase(request.durable);
    if (*removed) log(fmt::format("durable subscription {} deleted", request.durable));
    return *removed;
}

}  // namespace aegis::broker
