// Per-channel state: channels the gateway refused as disabled (held, their messages kept
// queued), and the messages published and received per channel, for status.

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "broker/broker_impl.h"
#include "core/clock.h"
#include "protocol/reason.h"

namespace aegis::broker {

using nlohmann::json;

namespace {

// A delay in [cap/2, cap] for the n-th refusal in a row: 1 s doubling up to kMaxHoldMs.
std::uint64_t hold_delay(std::uint32_t refusals) {
    const std::uint32_t doublings = std::min<std::uint32_t>(refusals == 0 ? 0 : refusals - 1, 15);
    const std::uint64_t cap = std::min<std::uint64_t>(kMaxHoldMs, std::uint64_t{1'000} << doublings);
    thread_local std::mt19937_64 generator{std::random_device{}()};
    return std::uniform_int_distribution<std::uint64_t>(cap / 2, cap)(generator);
}

ChannelCounts& counted(std::map<std::string, ChannelCounts, std::less<>>& counts, const std::string& channel) {
    if (const auto found = counts.find(channel); found != counts.end()) return found->second;
    const bool has_other = counts.count("other") != 0;
    if (counts.size() - (has_other ? 1 : 0) >= kMaxCountedChannels) return counts["other"];
    return counts[channel];
}

}  // namespace

void Broker::Impl::hold_channel(BatchInFlight flight, const Error& cause, bool refused_by_gateway) {
    const auto now = unix_time_ms();
    auto [it, fresh] = held_channels.try_emplace(flight.channel);
    auto& hold = it->second;
    // The gateway's words without the reason's own description in front.
    const auto colon = cause.message.find(": ");
    if (protocol::reason_of(cause) == protocol::Reason::channel_disabled && colon != std::string::npos)
        hold.message = cause.message.substr(colon + 2);
    else if (hold.message.empty())
        hold.message = cause.message;
    if (fresh) {
        hold.since_ms = now;
        log(fmt::format("gateway refused {} message(s) to {}: {}; kept queued, asking again every {} s at most",
                        flight.ids.size(), flight.channel, hold.message, kMaxHoldMs / 1000));
    }
    // Batches sent before the hold began are refused too: one round counts once. A batch kept
    // back here (no gateway answer) waits for the delay already set.
    if (refused_by_gateway && (fresh || hold.probing)) {
        ++hold.refusals;
        hold.until_ms = now + hold_delay(hold.refusals);
        hold.probing = false;
    }
    if (auto deferred = queue->defer(flight.ids, hold.until_ms); !deferred) {
        // They stay in flight until the session is lost and everything in flight waits again.
        log(fmt::format("cannot keep messages back: {}", deferred.error().message));
    }
    // A tool waiting for the ack is told why now; the message stays queued and is still sent.
    const auto wire = ipc::to_wire(protocol::protocol_error(
        protocol::Reason::channel_disabled,
        fmt::format("{}; the message stays queued and is sent once the channel is enabled", hold.message)));
    for (const auto& id : flight.ids) {
        if (auto waiter = outbound_flow.take_waiter(id)) fail(*waiter, wire);
    }
    schedule_retry();
}

bool Broker::Impl::defer_if_held(const BatchInFlight& flight) {
    const auto found = held_channels.find(flight.channel);
    if (found == held_channels.end()) return false;
    auto& hold = found->second;
    const auto now = unix_time_ms();
    if (hold.until_ms <= now) {
        // This batch asks the gateway again; the channel's other batches wait for its answer
        // (or, should it be lost with the session, for the next try).
        hold.probing = true;
        hold.until_ms = now + hold_delay(hold.refusals + 1);
        return false;
    }
    hold_channel(flight, Error{ExitCode::refused, hold.message, 0}, false);
    return true;
}

void Broker::Impl::channel_accepted(const std::string& channel, std::size_t messages) {
    counted(channel_counts, channel).published += messages;
    const auto hold = held_channels.find(channel);
    if (hold == held_channels.end()) return;
    const auto now = unix_time_ms();
    log(fmt::format("gateway accepts {} again after {} s ({} refusals); sending what waits for it", channel,
                    (now - std::min(now, hold->second.since_ms)) / 1000, hold->second.refusals));
    held_channels.erase(hold);
    // What was kept back for it goes now, not at the time it was deferred to.
    if (auto due = queue->undefer_channel(channel); !due) {
        log(fmt::format("cannot send the messages kept back for {} at once: {}", channel, due.error().message));
    }
}

void Broker::Impl::channel_received(const std::string& channel) {
    ++counted(channel_counts, channel).received;
}

void Broker::Impl::note_held(json& message, const std::string& channel) const {
    const auto hold = held_channels.find(channel);
    if (hold == held_channels.end()) return;
    message["held"] =
        json{{"reason", protocol::name(protocol::Reason::channel_disabled)}, {"message", hold->second.message}};
}

json Broker::Impl::channels_status() const {
    json out = json::array();
    std::map<std::string, json, std::less<>> rows;
    for (const auto& [channel, counts] : channel_counts)
        rows[channel] = json{{"channel", channel}, {"published", counts.published}, {"received", counts.received}};
    for (const auto& [channel, hold] : held_channels) {
        auto& row = rows[channel];
        if (row.is_null()) row = json{{"channel", channel}, {"published", 0}, {"received", 0}};
        row["held"] = json{{"reason", protocol::name(protocol::Reason::channel_disabled)},
                           {"message", hold.message},
                           {"since_ms", hold.since_ms},
                           {"next_attempt_ms", hold.until_ms}};
    }
    for (auto& [channel, row] : rows) out.push_back(std::move(row));
    return out;
}

}  // namespace aegis::broker
