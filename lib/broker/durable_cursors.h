#pragma once
// The broker's durable cursors (aegis-sub --durable NAME): each cursor's patterns, the inbox
// that stores what matches them while no client reads, the client attached to it, the backlog
// it is given and the acks that advance it. It owns that state, reads no clock (time comes in as
// an argument) and reaches the inboxes only through CursorStore and the clients only through
// ipc::Peer, so unit tests drive it with fakes. The broker keeps the timers: it calls again when
// a client's socket has drained, and commits the acks of a turn at its end.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "broker/subscription_changes.h"
#include "broker/waiter.h"
#include "core/result.h"
#include "ipc/messages.h"
#include "protocol/envelope.h"
#include "store/durable_inbox.h"

namespace aegis::broker {

// The inboxes as the cursors use them (the broker's is store::DurableInbox, below).
class CursorStore {
public:
    virtual ~CursorStore() = default;
    // Creates a cursor, or replaces the patterns of an existing one (its position and inbox stay).
    [[nodiscard]] virtual Result<void> create_cursor(const std::string& name, const std::vector<std::string>& patterns,
                                                     std::uint64_t now_ms) = 0;
    // Deletes a cursor and its inbox; false when there was none.
    [[nodiscard]] virtual Result<bool> remove_cursor(const std::string& name) = 0;
    [[nodiscard]] virtual Result<std::vector<store::CursorInfo>> cursors() const = 0;
    [[nodiscard]] virtual Result<std::optional<store::CursorInfo>> cursor(const std::string& name) const = 0;
    [[nodiscard]] virtual std::size_t pending(const std::string& name) const = 0;
    // Appends the entries to the named cursors' inboxes: the rows added (a full inbox drops its oldest).
    [[nodiscard]] virtual Result<std::size_t> append(const std::vector<std::string>& names,
                                                     const std::vector<store::InboxEntry>& entries) = 0;
    [[nodiscard]] virtual Result<std::vector<store::InboxItem>> read_after(const std::string& name, std::uint64_t after,
                                                                           std::size_t limit) const = 0;
    [[nodiscard]] virtual Result<void> advance(const std::string& name, std::uint64_t sequence) = 0;
};

class InboxCursorStore final : public CursorStore {
public:
    explicit InboxCursorStore(std::unique_ptr<store::DurableInbox> inbox) : inbox_(std::move(inbox)) {}
    [[nodiscard]] Result<void> create_cursor(const std::string& name, const std::vector<std::string>& patterns,
                                             std::uint64_t now_ms) override {
        return inbox_->create_cursor(name, patterns, now_ms);
    }
    [[nodiscard]] Result<bool> remove_cursor(const std::string& name) override { return inbox_->remove_cursor(name); }
    [[nodiscard]] Result<std::vector<store::CursorInfo>> cursors() const override { return inbox_->cursors(); }
    [[nodiscard]] Result<std::optional<store::CursorInfo>> cursor(const std::string& name) const override {
        return inbox_->cursor(name);
    }
    [[nodiscard]] std::size_t pending(const std::string& name) const override { return inbox_->pending(name); }
    [[nodiscard]] Result<std::size_t> append(const std::vector<std::string>& names,
                                             const std::vector<store::InboxEntry>& entries) override {
        return inbox_->append(names, entries);
    }
    [[nodiscard]] Result<std::vector<store::InboxItem>> read_after(const std::string& name, std::uint64_t after,
                                                                   std::size_t limit) const override {
        return inbox_->read_after(name, after, limit);
    }
    [[nodiscard]] Result<void> advance(const std::string& name, std::uint64_t sequence) override {
        return inbox_->advance(name, sequence);
    }

private:
    std::unique_ptr<store::DurableInbox> inbox_;
};

// A local client attached to a durable cursor.
struct DurableAttachment {
    std::uint64_t peer_id = 0;
    std::weak_ptr<ipc::Peer> peer;
    std::uint64_t sent_up_to = 0;  // the highest inbox sequence given to the client
    bool caught_up = false;
    bool resume_scheduled = false;  // more backlog waits for the client's socket to drain
};

// Backlog is read from the inbox this many messages at a time, and given to a client's socket
// while less than kBacklogWindowBytes waits to be written.
inline constexpr std::size_t kBacklogChunk = 512;
inline constexpr std::size_t kBacklogWindowBytes = 4 * 1024 * 1024;

class DurableCursors {
public:
    using Log = std::function<void(std::string_view line)>;
    DurableCursors(std::unique_ptr<CursorStore> store, Log log) : store_(std::move(store)), log_(std::move(log)) {}

    // Reads the cursors on file: how many there are.
    [[nodiscard]] Result<std::size_t> load();
    [[nodiscard]] std::size_t size() const { return cursors_.size(); }
    // Every cursor's patterns: the gateway's set keeps them while no client is attached.
    [[nodiscard]] std::vector<std::string> patterns() const;

    // A client asks to read the cursor `request.durable` (made now if new, at `now_ms`): the
    // subscriber to give the subscription changes, or why not (another client reads it, or its
    // patterns differ without a reset).
    [[nodiscard]] std::variant<PendingSubscribe, ipc::WireError> subscribe(const Waiter& waiter, std::uint64_t peer_id,
                                                                           ipc::SubscribeRequest request,
                                                                           std::uint64_t now_ms);
    // The gateway's set covers the cursor: its client is attached, answered with the size of its
    // backlog, and given the backlog. True: more waits for the client's socket (resume() later).
    [[nodiscard]] bool attach(const PendingSubscribe& pending);
    // The gateway refused the set: the cursor keeps the patterns it had (or is gone if new) and
    // the client is told why.
    void refuse(const PendingSubscribe& pending, const ipc::WireError& error, std::uint64_t now_ms);
    // A client left: the cursors it read store for it from now on.
    void detach(std::uint64_t peer_id);

    // Stores delivered messages in the inboxes of the cursors whose patterns match them.
    [[nodiscard]] Result<void> store(const std::vector<protocol::Envelope>& envelopes);
    // For each cursor whose full inbox dropped its oldest messages since the last call, how many.
    [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> take_dropped() { return std::move(dropped_); }
    [[nodiscard]] std::vector<std::string> attached() const;
    // Gives the cursor's attached client what it has not had yet, while its socket has room. True:
    // more waits until the socket drains, and nothing else is waiting for that (call resume() later).
    [[nodiscard]] bool send_backlog(const std::string& name);
    // The wait for a drained socket is over: the same as send_backlog.
    [[nodiscard]] bool resume(const std::string& name);
    // Message copies given to clients from inboxes.
    [[nodiscard]] std::uint64_t delivered() const { return delivered_; }

    // An ack, answered once commit_acks() has stored it. True when it is the first since the last
    // commit (the broker then commits at the end of the turn); an unknown cursor is answered at once.
    [[nodiscard]] bool ack(const Waiter& waiter, const ipc::AckRequest& request);
    // Stores the acks received since the last commit, each cursor advanced once, and answers them.
    void commit_acks();

    void list(const Waiter& waiter) const;
    // Deletes a cursor: whether there was one, or none when the request failed (then answered).
    [[nodiscard]] std::optional<bool> remove(const Waiter& waiter, const ipc::CursorDeleteRequest& request);

private:
    void log(std::string_view line) const {
        if (log_) log_(line);
    }

    std::unique_ptr<CursorStore> store_;
    Log log_;
    std::unordered_map<std::string, std::vector<std::string>> cursors_;  // name -> patterns
    std::unordered_map<std::string, DurableAttachment> attached_;
    // Acks received since the last commit: cursor -> (position, who waits).
    std::unordered_map<std::string, std::pair<std::uint64_t, std::vector<Waiter>>> pending_acks_;
    std::vector<std::pair<std::string, std::uint64_t>> dropped_;
    std::uint64_t delivered_ = 0;
};

}  // namespace aegis::broker
