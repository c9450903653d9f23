#include "gateway/full_inbox_log.h"

#include <fmt/format.h>

namespace aegis::gateway {

FullInboxLog::FullInboxLog(boost::asio::io_context& io, std::chrono::milliseconds interval, std::uint64_t max_messages,
                           GatewayMetrics& counters, std::function<void(std::string_view)> log)
    : max_messages_(max_messages), counters_(counters), log_(std::move(log)), lines_(interval), timer_(io) {}

void FullInboxLog::dropped(const std::string& id, std::uint64_t messages) {
    counters_.count_dropped("full", messages);
    if (const auto total = lines_.note(id, messages, std::chrono::steady_clock::now())) {
        log_(fmt::format("inbox of id={} is full (--inbox-max-messages {}): dropped {} oldest messages", id,
                         max_messages_, *total));
    }
    schedule();
}

void FullInboxLog::stop() {
    stopped_ = true;
    timer_.cancel();
    report_held(std::chrono::steady_clock::now() + lines_.interval());
}

void FullInboxLog::schedule() {
    const auto due = lines_.next_due();
    if (!due || scheduled_ || stopped_) return;
    scheduled_ = true;
    std::weak_ptr<FullInboxLog> weak = weak_from_this();
    timer_.expires_at(*due);
    timer_.async_wait([weak](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self) return;
        self->scheduled_ = false;
        if (ec) return;
        self->report_held(std::chrono::steady_clock::now());
        self->schedule();
    });
}

void FullInboxLog::report_held(std::chrono::steady_clock::time_point as_of) {
    const auto seconds = std::chrono::duration<double>(lines_.interval()).count();
    for (const auto& [id, messages] : lines_.due(as_of)) {
        log_(
            fmt::format("inbox of id={} is full (--inbox-max-messages {}): dropped {} more oldest messages in the "
                        "last {:g} s",
                        id, max_messages_, messages, seconds));
    }
}

}  // namespace aegis::gateway
