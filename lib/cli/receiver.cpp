#include "cli/receiver.h"

#include <fmt/format.h>
#include <unistd.h>

#include "cli/duration.h"
#include "cli/request_reply.h"
#include "cli/tool.h"

namespace aegis::cli {

namespace {

constexpr std::chrono::milliseconds kPoll{50};
constexpr std::chrono::seconds kAckTimeout{30};
// Messages written and not yet confirmed, at most (the one just written included): what a
// broker crash can replay. The broker commits the acks in flight together.
constexpr std::size_t kAcksInFlight = 16;
constexpr std::size_t kHeldOutputBytes = 64 * 1024;

[[nodiscard]] ipc::Deadline sooner(const ipc::Deadline& a, std::chrono::milliseconds from_now) {
    const auto b = std::chrono::steady_clock::now() + from_now;
    return a && *a < b ? a : ipc::Deadline(b);
}

}  // namespace

Receiver::Receiver(ipc::Client& client, const ReceiveOptions& options, std::string_view tool, std::FILE* out)
    : client_(client), options_(options), tool_(tool), out_(out) {
    if (!options.exec.empty()) pool_ = std::make_unique<CommandPool>(options.exec, options.jobs, options.exec_timeout);
    // Messages of a plain subscription that arrive together are written together: what the
    // broker sent in one go is flushed once, before waiting for more (never later). A durable
    // subscription flushes each message before it is acknowledged.
    hold_output_ = options.durable.empty() && !pool_;
    if (hold_output_ && ::isatty(::fileno(out_)) == 0) std::setvbuf(out_, nullptr, _IOFBF, kHeldOutputBytes);
}

bool Receiver::write_out(std::string_view text) {
    return std::fwrite(text.data(), 1, text.size(), out_) == text.size() && std::fflush(out_) == 0;
}

bool Receiver::write_held(std::string_view text) {
    return std::fwrite(text.data(), 1, text.size(), out_) == text.size();
}

bool Receiver::done() const {
    return (options_.count && received_ >= *options_.count) || (options_.drain && caught_up_);
}

void Receiver::stop_commands() {
    if (pool_) pool_->stop_all();
}

int Receiver::timed_out() const {
    if (options_.count && received_ < *options_.count) {
        return report(
            tool_, make_error(ExitCode::timeout, "{} of {} messages within the -W time", received_, *options_.count));
    }
    if (options_.drain && !caught_up_) {
        return report(tool_, make_error(ExitCode::timeout, "the backlog was not drained within the -W time"));
    }
    if (received_ == 0 && !options_.drain) {
        return report(tool_, make_error(ExitCode::timeout, "no message within the -W time"));
    }
    return 0;
}

int Receiver::fail(const Error& error) {
    warn_unconfirmed();
    return report(tool_, error);
}

void Receiver::warn_unconfirmed() {
    if (unconfirmed_.empty()) return;
    fmt::print(stderr,
               "{}: warning: durable subscription {}: {} written but not confirmed by the broker: may be "
               "delivered again\n",
               tool_, options_.durable, unconfirmed_.describe());
}

int Receiver::finish() {
    (void)std::fflush(out_);  // a reader that went away is no error
    if (auto confirmed = confirm_acks(0); !confirmed) return fail(confirmed.error());
    warn_unconfirmed();
    return 0;
}

int Receiver::run() {
    const auto deadline = ipc::deadline_after(options_.wait);
    for (;;) {
        const bool busy = pool_ && pool_->running() > 0;
        auto collected = collect_finished(done() && busy ? kPoll : std::chrono::milliseconds(0));
        if (!collected) return fail(collected.error());
        if (*collected == Step::stop) return finish();
        if (done() && !busy) return finish();
        if (done()) continue;  // the last commands are still running
        if (hold_output_ && !client_.frame_ready() && std::fflush(out_) != 0) return finish();
        auto frame = client_.next_event(busy ? sooner(deadline, kPoll) : deadline);
        if (!frame) return fail(frame.error());
        if (!frame->has_value()) {
            if (deadline && std::chrono::steady_clock::now() >= *deadline) {
                stop_commands();  // ends the running commands (their process groups)
                if (const int code = finish(); code != 0) return code;
                return timed_out();
            }
            continue;
        }
        auto& event = **frame;
        const std::string kind = event.header.value("event", std::string());
        if (kind == "caught_up") {
            caught_up_ = true;
            continue;
        }
        if (kind == "messages") {
            auto batch = ipc::parse_message_batch(event.header, event.payload);
            if (auto* error = std::get_if<ipc::LocalError>(&batch)) {
                return fail(make_error(ExitCode::failure, "the broker sent {}", error->message));
            }
            for (auto& message : std::get<std::vector<ipc::DeliveredMessage>>(batch)) {
                auto step = on_message(std::move(message), 0);
                if (!step) return fail(step.error());
                if (*step == Step::stop) return finish();
            }
            continue;
        }
        const std::uint64_t seq = event.header.value("cursor_seq", std::uint64_t{0});
        auto message = ipc::parse_message_event(event.header, std::move(event.payload));
        if (!message) continue;
        auto step = on_message(std::move(*message), seq);
        if (!step) return fail(step.error());
        if (*step == Step::stop) return finish();
    }
}

Result<Receiver::Step> Receiver::on_message(ipc::DeliveredMessage message, std::uint64_t cursor_seq) {
    if (cursor_seq != 0) acks_.received(cursor_seq);
    const bool wanted = options_.from.empty() || (message.verified && message.origin_fingerprint == options_.from);
    if (!wanted || done()) {
        if (auto acked = handled(cursor_seq); !acked) return acked.take_error();
        return Step::go_on;
    }
    ++received_;
    if (pool_) {
        running_seq_[ipc::to_hex(message.id)] = cursor_seq;
        pool_->start(std::move(message));
        return Step::go_on;
    }
    const auto text = render_message(message, options_.style);
    if (!(hold_output_ ? write_held(text) : write_out(text))) return Step::stop;
    written(cursor_seq, message.id);
    if (auto acked = handled(cursor_seq); !acked) return acked.take_error();
    return Step::go_on;
}

Result<Receiver::Step> Receiver::collect_finished(std::chrono::milliseconds wait) {
    if (!pool_) return Step::go_on;
    for (auto& finished : pool_->take_finished(wait)) {
        auto step = on_finished(std::move(finished));
        if (!step || *step == Step::stop) return step;
    }
    return Step::go_on;
}

Result<Receiver::Step> Receiver::on_finished(CommandPool::Finished finished) {
    if (!finished.result) return finished.result.take_error();
    const auto& result = *finished.result;
    std::string error;  // the reply's error header; empty when the command succeeded
    if (result.timed_out) {
        error = fmt::format("timed out after {} (--exec-timeout)", duration_text(options_.exec_timeout));
        fmt::print(stderr, "{}: warning: the command for {} {}; its process group was ended\n", tool_,
                   ipc::to_hex(finished.message.id), error);
    } else if (result.exit_status != 0) {
        error = fmt::format("exit {}", result.exit_status);
    }
    if (auto reply = reply_with_error(finished.message, error)) {
        // A command that timed out answers with no payload: what it wrote is cut short.
        const auto payload = result.timed_out ? std::string_view() : std::string_view(result.output);
        auto sent = client_.publish(*reply, as_bytes(payload), ipc::deadline_after(std::chrono::seconds(30)));
        // A reply the broker refuses (a bad reply-to) must not stop a long-running replier.
        const bool refused =
            !sent && (sent.error().exit == ExitCode::refused || sent.error().exit == ExitCode::bad_input);
        if (refused) {
            fmt::print(stderr, "{}: warning: no reply to {}: {}\n", tool_, ipc::to_hex(finished.message.id),
                       sent.error().message);
        } else if (!sent) {
            return sent.take_error();
        }
    } else if (!result.timed_out && !write_out(result.output)) {
        return Step::stop;
    }
    const auto id = ipc::to_hex(finished.message.id);
    const auto seq = running_seq_[id];
    running_seq_.erase(id);
    written(seq, finished.message.id);
    if (auto acked = handled(seq); !acked) return acked.take_error();
    return Step::go_on;
}

Result<void> Receiver::handled(std::uint64_t cursor_seq) {
    if (options_.durable.empty() || cursor_seq == 0) return {};
    const auto position = acks_.handled(cursor_seq);
    if (!position) return {};
    auto sent = client_.send(ipc::to_header(ipc::AckRequest{options_.durable, *position}), {},
                             ipc::deadline_after(kAckTimeout));
    if (!sent) return sent.take_error();
    acks_in_flight_.push_back(AckInFlight{*sent, *position});
    return confirm_acks(kAcksInFlight - 1);
}

Result<void> Receiver::confirm_acks(std::size_t at_most) {
    while (!acks_in_flight_.empty()) {
        const bool must_wait = acks_in_flight_.size() > at_most;
        const auto deadline =
            must_wait ? ipc::deadline_after(kAckTimeout) : ipc::Deadline(std::chrono::steady_clock::now());
        // The broker answers once the new position is committed to its state file.
        auto answer = client_.response(acks_in_flight_.front().request, deadline);
        if (!answer) {
            if (!must_wait && answer.error().exit == ExitCode::timeout) return {};
            return answer.take_error();
        }
        unconfirmed_.confirmed(acks_in_flight_.front().position);
        acks_in_flight_.pop_front();
    }
    return {};
}

void Receiver::written(std::uint64_t cursor_seq, const protocol::MessageId& id) {
    if (!options_.durable.empty() && cursor_seq != 0) unconfirmed_.written(cursor_seq, ipc::to_hex(id));
}

}  // namespace aegis::cli
