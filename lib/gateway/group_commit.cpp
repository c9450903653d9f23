#include "gateway/group_commit.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "core/clock.h"
#include "gateway/backplane.h"
#include "gateway/full_inbox_log.h"
#include "gateway/gateway_session.h"
#include "gateway/routing.h"
#include "protocol/reason.h"

namespace aegis::gateway {

namespace {

// Session tokens and deliver_acks wait at most this long for a group commit to carry them to the
// store: a burst of handshakes, or a stream of acks between publishes, then costs one commit, not
// one per event-loop turn. Neither needs to be stored before it is answered: a token lost in a
// crash gives a fresh session, an ack lost gives a redelivery, which the receiver drops.
constexpr std::chrono::milliseconds kLazyCommitDelay{200};

// How often stored messages past --inbox-max-age are pruned.
std::chrono::milliseconds expiry_interval(std::chrono::seconds max_age) {
    return std::clamp<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(max_age) / 4,
                                                 std::chrono::milliseconds(250), std::chrono::milliseconds(60'000));
}

}  // namespace

GroupCommit::GroupCommit(boost::asio::io_context& io, store::GatewayState& state, const Routing& routing,
                         Backplane& backplane, GatewayMetrics& counters, GroupCommitLimits limits,
                         std::function<void(std::string_view)> log)
    : io_(io),
      state_(state),
      routing_(routing),
      backplane_(backplane),
      counters_(counters),
      limits_(limits),
      log_(std::move(log)),
      full_(std::make_shared<FullInboxLog>(io, limits.drop_log_interval, limits.inbox_max_messages, counters, log_)),
      lazy_timer_(io),
      expiry_timer_(io) {}

void GroupCommit::publish(const std::shared_ptr<GatewaySession>& from, std::uint32_t request_id, std::string channel,
                          Bytes batch, std::size_t messages, bool fsync, bool request) {
    pending_publishes_.push_back(PendingPublish{from, from->identity().key, request_id, std::move(channel),
                                                std::move(batch), messages, fsync, request});
    post_flush();
}

void GroupCommit::acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) {
    auto& highest = pending_acks_[key];
    highest = std::max(highest, sequence);
    schedule_lazy_commit();
}

std::uint64_t GroupCommit::waiting_ack(const crypto::PublicKey& key) const {
    const auto queued = pending_acks_.find(key);
    return queued == pending_acks_.end() ? 0 : queued->second;
}

void GroupCommit::token_changed() {
    ++token_changes_;
    if (stopped_) {
        commit_tokens_now();  // the event loop may not run the group commit any more
    } else {
        schedule_lazy_commit();
    }
}

void GroupCommit::post_flush() {
    if (flush_posted_) return;
    flush_posted_ = true;
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    boost::asio::post(io_, [weak] {
        if (auto self = weak.lock()) self->flush();
    });
}

// Tokens and acks ride along with the next group commit; when none comes within
// kLazyCommitDelay, one is made for them.
void GroupCommit::schedule_lazy_commit() {
    if (lazy_scheduled_ || stopped_) return;
    lazy_scheduled_ = true;
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    lazy_timer_.expires_after(kLazyCommitDelay);
    lazy_timer_.async_wait([weak](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self) return;
        self->lazy_scheduled_ = false;
        // Cancelled at shutdown, whose own flush() stores them.
        if (!ec && (self->tokens_waiting() || !self->pending_acks_.empty())) self->flush();
    });
}

// Every publish and ack of this event-loop turn in one commit, then the pubacks, then the deliveries.
void GroupCommit::flush() {
    flush_posted_ = false;
    auto publishes = std::exchange(pending_publishes_, {});
    auto acks = std::exchange(pending_acks_, {});
    if (publishes.empty() && acks.empty() && !tokens_waiting()) return;
    store::StateCommit commit;
    commit.now_ms = unix_time_ms();
    // A puback promises the batch survives power loss, unless it holds only requests,
    // replies and heartbeats (protocol::short_lived); a lost ack only means a redelivery.
    commit.survive_power_loss = std::any_of(publishes.begin(), publishes.end(), [](const auto& p) { return p.fsync; });
    const auto ack_count = acks.size();
    commit.acknowledgements = std::move(acks);
    std::vector<crypto::PublicKey> touched;
    for (auto& publish : publishes) {
        auto keys = routing_.recipients(publish.channel, publish.origin);
        // A request nobody would receive is refused at once rather than left unanswered.
        publish.no_responders = publish.request && keys.empty();
        if (publish.no_responders) continue;
        for (const auto& key : keys)
            if (std::find(touched.begin(), touched.end(), key) == touched.end()) touched.push_back(key);
        // Kept without recipients too: a store whose view of the sets lagged routes it again.
        commit.appends.push_back(store::InboxAppend{publish.channel, std::move(publish.batch), publish.messages,
                                                    std::move(keys), publish.origin});
    }
    commit.route = [&routing = routing_](const store::InboxAppend& append) {
        return routing.recipients(append.channel, append.origin);
    };
    const auto tokens_through = token_changes_;
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    const auto began = std::chrono::steady_clock::now();
    state_.commit(std::move(commit), [weak, publishes = std::move(publishes), touched = std::move(touched), ack_count,
                                      tokens_through, began](Result<store::CommitOutcome> committed) {
        auto self = weak.lock();
        if (!self) return;
        self->counters_.store_commit_seconds.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
        self->answer(committed, publishes, touched, ack_count, tokens_through);
    });
}

void GroupCommit::answer(const Result<store::CommitOutcome>& committed, const std::vector<PendingPublish>& publishes,
                         const std::vector<crypto::PublicKey>& touched, std::size_t acks,
                         std::uint64_t tokens_through) {
    counters_.last_commit_ok = committed.ok();
    if (!committed) {
        ++counters_.store_failures;
        // Session tokens stay with the store and are tried again with the next commit.
        log_(fmt::format("cannot store {} batches, {} acknowledgements and the session tokens: {}", publishes.size(),
                         acks, committed.error().message));
        if (tokens_waiting()) schedule_lazy_commit();
    } else {
        tokens_committed_ = std::max(tokens_committed_, tokens_through);
        ++counters_.store_commits;
        for (const auto& [id, messages] : committed->dropped_full) full_->dropped(id, messages);
    }
    for (const auto& publish : publishes) {
        auto from = publish.from.lock();
        if (!from) continue;
        if (committed.ok() && publish.no_responders) {
            from->publish_refused(publish.request_id, protocol::Reason::no_responders,
                                  fmt::format("no responders on {}", publish.channel));
        } else {
            from->publish_stored(publish.request_id, publish.messages, committed.ok());
        }
    }
    if (committed.ok())
        for (const auto& key : touched) backplane_.inbox_grew(key);
}

void GroupCommit::commit_tokens_now() {
    store::StateCommit commit;
    commit.survive_power_loss = false;
    commit.now_ms = unix_time_ms();
    const auto tokens_through = token_changes_;
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    state_.commit(std::move(commit), [weak, tokens_through](Result<store::CommitOutcome> committed) {
        auto self = weak.lock();
        if (!self) return;
        if (committed) {
            self->tokens_committed_ = std::max(self->tokens_committed_, tokens_through);
        } else {
            self->log_(fmt::format("cannot store the session tokens: {}", committed.error().message));
        }
    });
}

void GroupCommit::start() {
    expire();
    schedule_expiry();
}

void GroupCommit::stop() {
    if (stopped_) return;
    stopped_ = true;
    expiry_timer_.cancel();
    lazy_timer_.cancel();
    flush();  // what was received is stored before the goodbye
    full_->stop();
}

void GroupCommit::schedule_expiry() {
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    expiry_timer_.expires_after(expiry_interval(limits_.inbox_max_age));
    expiry_timer_.async_wait([weak](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->stopped_) return;
        self->expire();
        self->schedule_expiry();
    });
}

void GroupCommit::expire() {
    if (!pending_acks_.empty()) flush();  // what was acknowledged did not expire unacknowledged
    std::weak_ptr<GroupCommit> weak = weak_from_this();
    state_.expire(unix_time_ms(), [weak](Result<std::map<std::string, std::uint64_t>> dropped) {
        auto self = weak.lock();
        if (!self) return;
        if (!dropped) {
            self->log_(fmt::format("cannot prune expired messages: {}", dropped.error().message));
            return;
        }
        for (const auto& [id, messages] : dropped.value()) {
            self->counters_.count_dropped("expired", messages);
            self->log_(fmt::format("inbox of id={}: {} messages expired unacknowledged (--inbox-max-age {} s)", id,
                                   messages, self->limits_.inbox_max_age.count()));
        }
        self->counters_.inbox_messages = self->state_.totals().messages;
    });
}

}  // namespace aegis::gateway
