#pragma once
// "inbox full" lines: a full inbox drops at every commit while its owner is away, so one line per
// identity per interval, the drops in between counted into the next line (or reported when the
// interval is over).

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/log_throttle.h"
#include "gateway/metrics.h"

namespace aegis::gateway {

class FullInboxLog : public std::enable_shared_from_this<FullInboxLog> {
public:
    FullInboxLog(boost::asio::io_context& io, std::chrono::milliseconds interval, std::uint64_t max_messages,
                 GatewayMetrics& counters, std::function<void(std::string_view)> log);

    // The inbox of `id` dropped `messages` oldest messages to stay within max_messages.
    void dropped(const std::string& id, std::uint64_t messages);
    // Shutting down: no more timers; every count held back is logged now.
    void stop();

private:
    void schedule();
    void report_held(std::chrono::steady_clock::time_point as_of);

    std::uint64_t max_messages_;
    GatewayMetrics& counters_;
    std::function<void(std::string_view)> log_;
    LogThrottle lines_;  // per identity id
    boost::asio::steady_timer timer_;
    bool scheduled_ = false;
    bool stopped_ = false;
};

}  // namespace aegis::gateway
