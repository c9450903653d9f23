#include "gateway/gateway_session.h"

#include <algorithm>
#include <utility>

#include "core/clock.h"
#include "gateway/session_host.h"
#include "protocol/envelope.h"
#include "protocol/reason.h"

namespace aegis::gateway {

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> random_array() {
    std::array<std::uint8_t, N> out{};
    crypto::random_bytes(out);
    return out;
}

}  // namespace

GatewaySession::GatewaySession(boost::asio::io_context& io, std::shared_ptr<net::Connection> connection,
                               SessionHandle handle, const SessionSettings& settings,
                               protocol::ReplayCache& replay_cache, std::weak_ptr<SessionHost> host)
    : connection_(std::move(connection)),
      handle_(handle),
      settings_(settings),
      host_(std::move(host)),
      peer_(connection_->peer()),
      handshake_timer_(io),
      handshake_(std::in_place,
                 protocol::ServerOptions{settings.identity, settings.clock_skew_ms, settings.certificate},
                 replay_cache),
      pump_timer_(io) {
    settings_.certificate = Bytes{};  // the handshake keeps the copy it sends, until it is done
}

void GatewaySession::start() {
    std::weak_ptr<GatewaySession> weak = weak_from_this();
    handshake_timer_.expires_after(settings_.handshake_timeout);
    handshake_timer_.async_wait([weak](const boost::system::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) self->on_handshake_timeout();
    });
    // Until the handshake is done nobody is authenticated: no message may cost more than a handshake message.
    connection_->limit_message_size(protocol::kMaxHandshakeMessageBytes);
    connection_->start(
        [weak](Bytes message) {
            if (auto self = weak.lock()) self->on_message(std::move(message));
        },
        [weak](const Error& why) {
            if (auto self = weak.lock()) self->on_transport_closed(why);
        });
}

void GatewaySession::log(std::string_view line) {
    if (auto host = host_.lock()) host->log(line);
}

void GatewaySession::on_message(Bytes message) {
    auto host = host_.lock();
    if (!host) return;
    host->metrics().bytes_in += message.size();
    last_seen_ms_ = unix_time_ms();
    switch (phase_) {
        case Phase::awaiting_hello: on_client_hello(message); break;
        case Phase::awaiting_auth: on_client_auth(message); break;
        case Phase::established: on_record(message); break;
        case Phase::opening:  // the client waits for the accept: nothing may come before it
        case Phase::closing:
        case Phase::closed: break;  // closing: whatever the peer still sends is dropped
    }
}

void GatewaySession::on_client_hello(ByteView message) {
    auto reply = handshake_->on_client_hello(message, unix_time_ms());
    if (!reply) {
        const auto reason = protocol::reason_of(reply.error());
        refuse_handshake(reason == protocol::Reason::none ? protocol::Reason::malformed : reason,
                         reply.error().message);
        return;
    }
    phase_ = Phase::awaiting_auth;
    send_raw(std::move(reply.value()));
}

void GatewaySession::on_client_auth(ByteView message) {
    auto host = host_.lock();
    if (!host) return;
    auto claim = handshake_->on_client_auth(message);
    if (!claim) {
        const auto reason = protocol::reason_of(claim.error());
        refuse_handshake(reason == protocol::Reason::none ? protocol::Reason::malformed : reason,
                         claim.error().message);
        return;
    }
    if (claim->probe) return answer_probe(*host, claim.value());
    auto admitted = host->admit(claim->key, claim->certificate);
    if (!admitted) {
        const auto reason = protocol::reason_of(admitted.error());
        refuse_handshake(reason,
                         fmt::format("{} (fingerprint {})", admitted.error().message, crypto::fingerprint(claim->key)));
        return;
    }
    identity_ = std::move(admitted.value());
    software_ = std::move(claim->software);
    policy_.emplace(identity_.role, identity_.id, identity_.publish_narrowing, identity_.subscribe_narrowing);
    phase_ = Phase::opening;
    std::weak_ptr<GatewaySession> weak = weak_from_this();
    host->resume(identity_, claim->resume_token, [weak](Result<ResumeGrant> resumed) {
        if (auto self = weak.lock()) self->on_resumed(std::move(resumed));
    });
}

// Everything a login is judged by, then the answer and the close: no session is opened,
// resumed or replaced, and the store is not asked (PROTOCOL.md §3.1, aegis-connect --check).
void GatewaySession::answer_probe(SessionHost& host, const protocol::ClientClaim& claim) {
    auto judged = host.judge(claim.key, claim.certificate);
    if (!judged) {
        refuse_handshake(
            protocol::reason_of(judged.error()),
            fmt::format("{} (fingerprint {}, probe)", judged.error().message, crypto::fingerprint(claim.key)));
        return;
    }
    ++host.metrics().probes;
    host.log(fmt::format("probe answered id={} role={} fingerprint={} peer={}{}: no session opened", judged->id,
                         to_string(judged->role), crypto::fingerprint(claim.key), peer_,
                         claim.software.empty() ? "" : fmt::format(" software=\"{}\"", claim.software)));
    send_raw(handshake_->answer_probe(judged->id, judged->role));
    close_reason_ = "probe answered";
    phase_ = Phase::closing;
    handshake_timer_.cancel();
    connection_->close();
}

void GatewaySession::on_resumed(Result<ResumeGrant> resumed) {
    if (phase_ != Phase::opening) return;  // timed out or closed meanwhile
    auto host = host_.lock();
    if (!host) return;
    if (!resumed) {
        refuse_handshake(protocol::Reason::internal,
                         fmt::format("cannot store the session: {}", resumed.error().message));
        return;
    }
    token_ = resumed->token;
    acknowledged_ = resumed->resume_point;
    sent_ = resumed->resume_point;
    delivering_ = resumed->resumed;

    protocol::Accepted grant;
    grant.session_id = random_array<16>();
    grant.session_token = resumed->token;
    grant.resume_point = resumed->resume_point;
    grant.assigned_id = identity_.id;
    grant.role = identity_.role;
    send_raw(handshake_->accept(grant));
    records_.emplace(handshake_->take_keys(), protocol::RekeyPolicy{}, unix_time_ms());
    handshake_.reset();  // its transcript state and keys (about 0.7 KiB) are of no further use
    connection_->limit_message_size(settings_.max_record_bytes);
    phase_ = Phase::established;
    established_ms_ = unix_time_ms();
    host->metrics().handshake_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - accepted_at_).count());
    handshake_timer_.cancel();

    // Whatever the identity last subscribed keeps routing into its inbox until this session says otherwise.
    for (const auto& pattern : resumed->patterns)
        if (policy_->may_subscribe(pattern)) subscriptions_.push_back(pattern);
    host->established(shared_from_this());
    // One line per session: a connection that never gets here ends in a "refused" or "disconnect" line.
    log(fmt::format("authenticated id={} role={} fingerprint={} peer={} session={} resume_point={}", identity_.id,
                    to_string(identity_.role), crypto::fingerprint(identity_.key), peer_,
                    resumed->resumed ? "resumed" : "fresh", resumed->resume_point));
    if (phase_ == Phase::established) pump();
}

void GatewaySession::on_handshake_timeout() {
    if (phase_ != Phase::awaiting_hello && phase_ != Phase::awaiting_auth && phase_ != Phase::opening) return;
    refuse_handshake(protocol::Reason::timeout,
                     fmt::format("handshake not finished within {} ms", settings_.handshake_timeout.count()));
}

void GatewaySession::refuse_handshake(protocol::Reason reason, std::string_view detail) {
    if (auto host = host_.lock()) {
        host->metrics().count_handshake_failure(protocol::name(reason));
        host->metrics().count_refusal(protocol::name(reason));
        host->log(fmt::format("refused peer={} reason={}: {}", peer_, protocol::name(reason), detail));
    }
    close_reason_ = fmt::format("refused ({})", protocol::name(reason));
    if (handshake_) send_raw(handshake_->refuse(reason, detail));
    phase_ = Phase::closing;
    handshake_timer_.cancel();
    connection_->close();
}

void GatewaySession::close_with(protocol::Reason reason, std::string_view text) {
    if (phase_ == Phase::closing || phase_ == Phase::closed) return;
    if (phase_ == Phase::established) {
        protocol::Frame goodbye;
        goodbye.type = protocol::FrameType::goodbye;
        goodbye.reason = reason;
        goodbye.text = std::string(text);
        send_frame(goodbye);
    } else {
        if (handshake_) send_raw(handshake_->refuse(reason, text));
    }
    close_reason_ = fmt::format("{} ({})", text, protocol::name(reason));
    phase_ = Phase::closing;
    handshake_timer_.cancel();
    connection_->close();
}

void GatewaySession::on_transport_closed(const Error& why) {
    if (phase_ == Phase::closed) return;
    const bool during_handshake =
        phase_ == Phase::awaiting_hello || phase_ == Phase::awaiting_auth || phase_ == Phase::opening;
    phase_ = Phase::closed;
    handshake_timer_.cancel();
    auto host = host_.lock();
    if (!host) return;
    std::string reason = close_reason_;
    if (why.exit == ExitCode::bad_input) {
        // The transport refused a message over the limit (the handshake's while it is not done).
        host->metrics().count_transport_refusal("message_too_large");
        if (during_handshake) {
            host->metrics().count_handshake_failure(protocol::name(protocol::Reason::too_large));
            host->metrics().count_refusal(protocol::name(protocol::Reason::too_large));
            host->log(fmt::format("refused peer={} reason=too_large: {}", peer_, why.message));
        } else {
            host->metrics().count_refusal(protocol::name(protocol::Reason::too_large));
            host->log(fmt::format("closing id={} peer={}: {}", identity_.id, peer_, why.message));
        }
        if (reason.empty()) reason = "message too large";
    } else if (during_handshake) {
        host->metrics().count_handshake_failure("peer_closed");
    }
    if (reason.empty()) reason = during_handshake ? "closed by peer during handshake" : why.message;
    if (reason.empty()) reason = "closed by peer";
    pump_timer_.cancel();
    host->closed(*this, reason);
}

void GatewaySession::on_record(ByteView record) {
    auto plaintext = records_->open(record);
    if (!plaintext) {
        // An unopenable record means tampering or loss: the session cannot continue.
        if (auto host = host_.lock()) {
            host->metrics().count_refusal("bad_record");
            host->log(fmt::format("closing id={} peer={}: record failed to open: {}", identity_.id, peer_,
                                  plaintext.error().message));
        }
        close_reason_ = "bad record";
        phase_ = Phase::closing;
        connection_->close();
        return;
    }
    auto frame = protocol::decode_frame(plaintext.value());
    if (!frame) {
        // The record was authentic, so this is a buggy peer: say so and carry on.
        refuse_request(0, protocol::Reason::malformed, frame.error().message);
        return;
    }
    on_frame(frame.value());
}

void GatewaySession::on_frame(const protocol::Frame& frame) {
    switch (frame.type) {
        case protocol::FrameType::publish: on_publish(frame); break;
        case protocol::FrameType::subscribe: on_subscribe(frame); break;
        case protocol::FrameType::unsubscribe: on_unsubscribe(frame); break;
        case protocol::FrameType::deliver_ack: on_deliver_ack(frame.sequence); break;
        // Frames only the gateway sends; a wire value outside FrameType never gets here (decode_frame refuses it).
        case protocol::FrameType::puback:
        case protocol::FrameType::suback:
        case protocol::FrameType::deliver:
        case protocol::FrameType::error:
        case protocol::FrameType::goodbye:
            refuse_request(frame.request_id, protocol::Reason::malformed,
                           fmt::format("frame type {:#04x} is not sent by clients", static_cast<unsigned>(frame.type)));
            break;
    }
}

void GatewaySession::on_publish(const protocol::Frame& frame) {
    using protocol::Reason;
    // Its puback would read as "not tied to a request" (§6); nothing of it is stored.
    if (frame.request_id == 0) return refuse_request(0, Reason::malformed, "a publish needs a non-zero request id");
    if (frame.batch.size() > settings_.max_message_bytes) {
        refuse_request(
            frame.request_id, Reason::too_large,
            fmt::format("batch of {} bytes is over the limit of {}", frame.batch.size(), settings_.max_message_bytes));
        return;
    }
    auto batch = protocol::decode_batch(frame.batch);
    if (!batch) return refuse_request(frame.request_id, Reason::malformed, batch.error().message);
    if (batch->messages.empty()) return refuse_request(frame.request_id, Reason::malformed, "empty batch");
    // Every receiver verifies the batch before use (PROTOCOL.md §5, §11); here only when the operator
    // asks, for an early bad_signature to a broker that signs wrongly.
    if (settings_.verify_signatures) {
        if (auto verified = protocol::verify_batch(batch.value()); !verified)
            return refuse_request(frame.request_id, Reason::bad_signature, "batch signature does not verify");
    }

    const auto& first = batch->messages.front();
    if (first.origin != identity_.key) return deny(frame.request_id, "publish", "batch is signed by another identity");
    if (first.origin_id != identity_.id)
        return deny(frame.request_id, "publish",
                    fmt::format("batch origin id '{}' is not this session's id '{}'", first.origin_id, identity_.id));
    if (auto valid = channel::validate_name(first.channel); !valid)
        return refuse_request(frame.request_id, Reason::invalid_channel, valid.error().message);
    auto host = host_.lock();
    if (!host) return;
    auto& topic = host->metrics().topics.of(first.channel);
    if (!policy_->may_publish(first.channel)) {
        ++topic.refused[std::string(protocol::name(Reason::access_denied))];
        return deny(frame.request_id, "publish", fmt::format("may not publish to {}", first.channel));
    }
    if (const auto* pattern = host->disabled_by(first.channel)) {
        ++topic.refused[std::string(protocol::name(Reason::channel_disabled))];
        return refuse_request(frame.request_id, Reason::channel_disabled,
                              fmt::format("{} matches the disabled pattern {}", first.channel, *pattern));
    }

    const auto count = batch->messages.size();
    host->metrics().messages_in += count;
    topic.messages_in += count;
    topic.bytes_in += frame.batch.size();
    const bool request = std::any_of(batch->messages.begin(), batch->messages.end(),
                                     [](const auto& message) { return message.kind == protocol::Kind::request; });
    host->publish(shared_from_this(), frame.request_id, first.channel, frame.batch, count,
                  protocol::any_needs_fsync(batch->messages), request);
}

void GatewaySession::publish_stored(std::uint32_t request_id, std::size_t messages, bool stored) {
    if (!stored) return refuse_request(request_id, protocol::Reason::internal, "the gateway could not store the batch");
    protocol::Frame ack;
    ack.type = protocol::FrameType::puback;
    ack.request_id = request_id;
    ack.sequence = messages;
    send_frame(ack);
}

void GatewaySession::publish_refused(std::uint32_t request_id, protocol::Reason reason, std::string text) {
    refuse_request(request_id, reason, std::move(text));
}

void GatewaySession::on_deliver_ack(std::uint64_t sequence) {
    if (sequence <= acknowledged_) return;
    acknowledged_ = std::min(sequence, sent_);
    auto host = host_.lock();
    if (!host) return;
    const auto now_ms = unix_time_ms();
    auto acked = unacknowledged_.begin();
    for (; acked != unacknowledged_.end() && acked->first <= acknowledged_; ++acked) {
        const auto stored_ms = acked->second;
        host->metrics().delivery_seconds.observe(static_cast<double>(now_ms - std::min(now_ms, stored_ms)) / 1000.0);
    }
    unacknowledged_.erase(unacknowledged_.begin(), acked);
    if (unacknowledged_.empty()) decltype(unacknowledged_)().swap(unacknowledged_);  // idle again: no memory kept
    host->acknowledge(identity_.key, acknowledged_);
    pump();
}

void GatewaySession::on_subscribe(const protocol::Frame& frame) {
    using protocol::Reason;
    for (const auto& pattern : frame.patterns) {
        if (auto valid = channel::validate_pattern(pattern); !valid)
            return refuse_request(frame.request_id, Reason::invalid_channel, valid.error().message);
        if (!policy_->may_subscribe(pattern))
            return deny(frame.request_id, "subscribe", fmt::format("may not subscribe to {}", pattern));
    }
    auto host = host_.lock();
    if (!host) return;
    std::size_t added = 0;
    for (const auto& pattern : frame.patterns)
        if (std::find(subscriptions_.begin(), subscriptions_.end(), pattern) == subscriptions_.end()) ++added;
    // The first subscribe after a handshake is the broker's whole set (§6): it replaces the kept one.
    if (!subscribed_since_handshake_) {
        subscriptions_.clear();
        added = frame.patterns.size();
    }
    if (subscriptions_.size() + added > settings_.max_subscriptions)
        return refuse_request(frame.request_id, Reason::too_large,
                              fmt::format("more than {} subscriptions", settings_.max_subscriptions));
    add_subscriptions(frame.patterns);
    subscribed_since_handshake_ = true;
    // The suback waits until the set is stored: from then on every gateway routes by it.
    host->subscriptions_changed(identity_, subscriptions_,
                                [weak = weak_from_this(), request_id = frame.request_id](Result<void> saved) {
                                    if (auto self = weak.lock()) self->subscription_saved(request_id, saved, true);
                                });
}

void GatewaySession::on_unsubscribe(const protocol::Frame& frame) {
    remove_subscriptions(frame.patterns);
    auto host = host_.lock();
    if (!host) return;
    host->subscriptions_changed(identity_, subscriptions_,
                                [weak = weak_from_this(), request_id = frame.request_id](Result<void> saved) {
                                    if (auto self = weak.lock()) self->subscription_saved(request_id, saved, false);
                                });
}

void GatewaySession::subscription_saved(std::uint32_t request_id, const Result<void>& saved, bool subscribed) {
    if (phase_ != Phase::established) return;
    if (!saved)
        return refuse_request(request_id, protocol::Reason::internal, "the gateway could not store the subscriptions");
    protocol::Frame ack;
    ack.type = protocol::FrameType::suback;
    ack.request_id = request_id;
    send_frame(ack);
    if (!subscribed) return;
    // A fresh session gets the identity's stored messages once it has said what it wants (after the suback).
    delivering_ = true;
    pump();
}

void GatewaySession::update_identity(const AuthorizedIdentity& identity) {
    identity_ = identity;
    policy_.emplace(identity_.role, identity_.id, identity_.publish_narrowing, identity_.subscribe_narrowing);
    auto host = host_.lock();
    if (!host) return;
    std::vector<std::string> dropped;
    for (const auto& pattern : subscriptions_)
        if (!policy_->may_subscribe(pattern)) dropped.push_back(pattern);
    if (dropped.empty()) return;
    remove_subscriptions(dropped);
    host->subscriptions_changed(identity_, subscriptions_, [](Result<void>) {});  // a failure is logged
    host->log(fmt::format("id={}: access narrowed, dropped subscriptions {}", identity_.id, fmt::join(dropped, " ")));
}

void GatewaySession::add_subscriptions(const std::vector<std::string>& patterns) {
    for (const auto& pattern : patterns)
        if (std::find(subscriptions_.begin(), subscriptions_.end(), pattern) == subscriptions_.end())
            subscriptions_.push_back(pattern);
}

void GatewaySession::remove_subscriptions(const std::vector<std::string>& patterns) {
    std::erase_if(subscriptions_, [&](const std::string& p) {
        return std::find(patterns.begin(), patterns.end(), p) != patterns.end();
    });
}

bool GatewaySession::take_rate_token() {
    if (settings_.replay_rate == 0) return true;
    const auto now = std::chrono::steady_clock::now();
    const double rate = settings_.replay_rate;
    const double elapsed = std::chrono::duration<double>(now - rate_refilled_).count();
    rate_tokens_ = std::min(rate, rate_tokens_ + elapsed * rate);
    rate_refilled_ = now;
    if (rate_tokens_ < 1.0) return false;
    rate_tokens_ -= 1.0;
    return true;
}

void GatewaySession::schedule_pump(std::chrono::milliseconds delay) {
    if (pump_scheduled_) return;
    pump_scheduled_ = true;
    std::weak_ptr<GatewaySession> weak = weak_from_this();
    pump_timer_.expires_after(delay);
    pump_timer_.async_wait([weak](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self) return;
        self->pump_scheduled_ = false;
        if (!ec) self->pump();
    });
}

void GatewaySession::pump() {
    if (phase_ != Phase::established || !delivering_) return;
    if (reading_) {
        pump_again_ = true;  // once the read in flight is answered
        return;
    }
    auto host = host_.lock();
    if (!host) return;
    const auto window = std::max<std::size_t>(settings_.replay_window, 1);
    const auto in_flight = unacknowledged_.size();  // sequences may have gaps: count the deliveries
    if (in_flight >= window) return;                // the next goes out when an ack comes
    reading_ = true;
    std::weak_ptr<GatewaySession> weak = weak_from_this();
    host->inbox(identity_.key, sent_, window - in_flight, [weak](Result<std::vector<store::StoredBatch>> stored) {
        if (auto self = weak.lock()) self->on_inbox(std::move(stored));
    });
}

void GatewaySession::on_inbox(Result<std::vector<store::StoredBatch>> stored) {
    reading_ = false;
    const bool again = std::exchange(pump_again_, false);
    if (phase_ != Phase::established) return;
    auto host = host_.lock();
    if (!host) return;
    if (!stored) {
        log(fmt::format("id={}: cannot read the inbox: {}", identity_.id, stored.error().message));
        return;
    }
    if (stored->empty()) {
        if (again) pump();
        return;
    }
    for (auto& entry : stored.value()) {
        if (entry.sequence <= sent_) continue;  // sent while the read was in flight
        if (!take_rate_token()) return schedule_pump(std::chrono::milliseconds(1000 / settings_.replay_rate + 1));
        protocol::Frame frame;
        frame.type = protocol::FrameType::deliver;
        frame.sequence = entry.sequence;
        frame.batch = std::move(entry.batch);
        sent_ = entry.sequence;
        unacknowledged_.emplace_back(entry.sequence, entry.stored_ms);
        host->metrics().messages_out += entry.messages;
        auto& topic = host->metrics().topics.of(entry.channel);
        topic.messages_out += entry.messages;
        topic.bytes_out += frame.batch.size();
        send_frame(frame);
        if (phase_ != Phase::established) return;
    }
    pump();  // more may have come, or room in the window is left
}

void GatewaySession::refuse_request(std::uint32_t request_id, protocol::Reason reason, std::string text) {
    if (auto host = host_.lock()) {
        host->metrics().count_refusal(protocol::name(reason));
        host->log(fmt::format("refused request id={} request={} reason={}: {}", identity_.id, request_id,
                              protocol::name(reason), text));
    }
    protocol::Frame error;
    error.type = protocol::FrameType::error;
    error.request_id = request_id;
    error.reason = reason;
    error.text = std::move(text);
    send_frame(error);
}

void GatewaySession::deny(std::uint32_t request_id, std::string_view action, std::string text) {
    if (auto host = host_.lock()) host->metrics().count_access_denied(action);
    refuse_request(request_id, protocol::Reason::access_denied, std::move(text));
}

void GatewaySession::send_frame(const protocol::Frame& frame) {
    if (!records_ || phase_ != Phase::established) return;
    send_raw(records_->seal(protocol::encode_frame(frame), unix_time_ms()));
}

void GatewaySession::send_raw(Bytes bytes) {
    auto host = host_.lock();
    if (host) host->metrics().bytes_out += bytes.size();
    if (connection_->send(std::move(bytes))) return;
    // Refused by the transport: its send queue is over its bound (a slow reader) or it is closing.
    if (host) {
        host->metrics().count_refusal("send_failed");
        host->log(fmt::format("closing id={} peer={}: send refused (queue over its bound or connection closing)",
                              identity_.id, peer_));
    }
    close_reason_ = "send refused by the transport";
    if (phase_ != Phase::closed) phase_ = Phase::closing;
}

}  // namespace aegis::gateway
