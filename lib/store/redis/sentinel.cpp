#include "store/redis/sentinel.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace aegis::store::redis {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kSwitchChannel = "+switch-master";

}  // namespace

Result<std::vector<Endpoint>> parse_sentinels(std::string_view list) {
    std::vector<Endpoint> out;
    std::string_view rest = list;
    while (true) {
        const auto comma = std::min(rest.find(','), rest.size());
        const auto item = rest.substr(0, comma);
        const auto bad = [&] {
            return make_error(ExitCode::usage, "--redis-sentinel wants HOST:PORT[,HOST:PORT...], not '{}'",
                              std::string(list));
        };
        // HOST:PORT or [V6]:PORT, the port given: parse_url reads the rest.
        const auto close = item.rfind(']');
        const auto colon = item.rfind(':');
        if (item.empty() || item.find('/') != std::string_view::npos || colon == std::string_view::npos ||
            (close != std::string_view::npos && colon < close))
            return bad();
        auto endpoint = parse_url("redis://" + std::string(item));
        if (!endpoint) return bad();
        out.push_back(std::move(*endpoint));
        if (comma == rest.size()) break;
        rest = rest.substr(comma + 1);
    }
    return out;
}

Result<Endpoint> parse_master_address(const Reply& reply) {
    if (reply.is_nil()) return make_error(ExitCode::failure, "it monitors no master of that name");
    if (reply.type != Reply::Type::array || reply.elements.size() != 2 || reply.elements[0].text.empty())
        return make_error(ExitCode::failure, "unexpected answer to SENTINEL get-master-addr-by-name");
    const auto port = parse_port(reply.elements[1].text);
    if (!port) return make_error(ExitCode::failure, "unexpected port '{}' for the master", reply.elements[1].text);
    return Endpoint{reply.elements[0].text, *port, 0};
}

std::optional<Endpoint> parse_switch_master(std::string_view payload, std::string_view master) {
    std::vector<std::string_view> words;
    while (!payload.empty()) {
        const auto space = std::min(payload.find(' '), payload.size());
        if (space > 0) words.push_back(payload.substr(0, space));
        payload = payload.substr(std::min(space + 1, payload.size()));
    }
    if (words.size() != 5 || words[0] != master) return std::nullopt;
    const auto port = parse_port(words[4]);
    if (!port) return std::nullopt;
    return Endpoint{std::string(words[3]), *port, 0};
}

Result<void> check_master_role(const Result<Reply>& reply) {
    if (!reply) return make_error(ExitCode::failure, "{}", reply.error().message);
    if (reply->type != Reply::Type::array || reply->elements.empty())
        return make_error(ExitCode::failure, "unexpected answer to ROLE");
    const auto& role = reply->elements[0].text;
    if (role != "master") return make_error(ExitCode::failure, "the server is a {}, not the master", role);
    return {};
}

class Sentinel::Impl : public std::enable_shared_from_this<Sentinel::Impl> {
public:
    Impl(asio::io_context& io, SentinelOptions options) : options_(std::move(options)), retry_timer_(io) {
        ConnectionOptions asking;
        asking.command_timeout = options_.ask_timeout;
        asking.backoff_max = options_.retry_max;
        for (const auto& endpoint : options_.sentinels)
            asking_.push_back(std::make_unique<Connection>(io, endpoint, asking));
        if (!options_.sentinels.empty())
            watching_ = std::make_unique<Connection>(io, options_.sentinels.front(), asking);
        probing_ = std::make_unique<Connection>(io, Endpoint{}, asking);
    }

    void ask(std::function<void(Result<Endpoint>)> done) { ask_from(0, {}, std::move(done)); }

    void follow(Endpoint current, std::function<void(const Endpoint&)> moved, std::function<bool()> reached) {
        current_ = std::move(current);
        moved_ = std::move(moved);
        reached_ = std::move(reached);
        if (!watching_) return;
        std::weak_ptr<Impl> weak = weak_from_this();
        watching_->on_message([weak](const std::string& channel, const std::string& payload) {
            auto self = weak.lock();
            if (!self || channel != kSwitchChannel) return;
            if (auto next = parse_switch_master(payload, self->options_.master)) self->tell(*next);
        });
        // Up again (a switch may have been missed meanwhile) or lost (the next sentinel that
        // answers is watched instead): ask again.
        watching_->on_state([weak](bool, const std::string&) {
            if (auto self = weak.lock()) self->recheck();
        });
        watching_->subscribe(std::string(kSwitchChannel));
        watching_->set_endpoint(options_.sentinels[answered_]);
        watching_->start();
        // Until the master's connection is up; the sentinel that answers first is watched.
        recheck();
    }

    void recheck() {
        if (stopped_ || !moved_) return;
        if (asking_now_) {
            again_ = true;
            return;
        }
        asking_now_ = true;
        again_ = false;
        std::weak_ptr<Impl> weak = weak_from_this();
        ask([weak](Result<Endpoint> found) {
            auto self = weak.lock();
            if (!self || self->stopped_) return;
            if (!found) return self->finish(false);
            if (*found == self->current_) return self->finish(true);
            self->probe(*found);
        });
    }

    void stop() {
        stopped_ = true;
        retry_timer_.cancel();
        for (auto& connection : asking_) connection->stop();
        if (watching_) watching_->stop();
        probing_->stop();
    }

private:
    // A new address from a sentinel is told only once its ROLE says master: a sentinel that has
    // not heard of the failover yet names the old master, which is down or a replica now.
    void probe(Endpoint candidate) {
        probing_->set_endpoint(candidate);
        probing_->start();
        std::weak_ptr<Impl> weak = weak_from_this();
        probing_->command({"ROLE"}, [weak, candidate](Result<Reply> reply) {
            auto self = weak.lock();
            if (!self || self->stopped_) return;
            self->probing_->stop();
            const bool master = check_master_role(reply).ok();
            if (master) self->tell(candidate);
            self->finish(master);
        });
    }

    // One round of asking is over: again after a pause while the master is not reached.
    void finish(bool found) {
        asking_now_ = false;
        if (again_ || !found || !reached_()) return retry();
        retry_delay_ = {};
    }

    void ask_from(std::size_t index, std::string reasons, std::function<void(Result<Endpoint>)> done) {
        if (stopped_) return done(make_error(ExitCode::failure, "stopped"));
        if (index >= asking_.size())
            return done(make_error(ExitCode::failure, "no Redis sentinel answered for master {} ({})", options_.master,
                                   reasons));
        auto& connection = *asking_[index];
        connection.start();
        std::weak_ptr<Impl> weak = weak_from_this();
        connection.command(
            {"SENTINEL", "get-master-addr-by-name", options_.master},
            [weak, index, reasons = std::move(reasons), done = std::move(done)](Result<Reply> reply) mutable {
                auto self = weak.lock();
                if (!self) return;
                Result<Endpoint> found = reply ? parse_master_address(*reply) : Result<Endpoint>(reply.take_error());
                if (found) {
                    self->answered_ = index;
                    // A watch that is down moves to the sentinel that answered.
                    if (self->watching_ && self->moved_ && !self->watching_->connected())
                        self->watching_->set_endpoint(self->options_.sentinels[index]);
                    return done(std::move(found));
                }
                reasons += fmt::format("{}{}:{}: {}", reasons.empty() ? "" : "; ", self->options_.sentinels[index].host,
                                       self->options_.sentinels[index].port, found.error().message);
                self->ask_from(index + 1, std::move(reasons), std::move(done));
            });
    }

    void tell(const Endpoint& found) {
        if (found == current_) return;
        current_ = found;
        moved_(current_);
    }

    void retry() {
        retry_delay_ = std::clamp(retry_delay_ * 2, options_.retry_min, options_.retry_max);
        retry_timer_.expires_after(retry_delay_);
        retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!ec && self) self->recheck();
        });
    }

    SentinelOptions options_;
    asio::steady_timer retry_timer_;
    std::vector<std::unique_ptr<Connection>> asking_;  // one per sentinel, for SENTINEL get-master-addr-by-name
    std::unique_ptr<Connection> watching_;             // subscribed to +switch-master on one of them
    std::unique_ptr<Connection> probing_;              // ROLE of an address a sentinel gave
    std::size_t answered_ = 0;                         // the sentinel that answered last
    Endpoint current_;
    std::function<void(const Endpoint&)> moved_;
    std::function<bool()> reached_;
    std::chrono::milliseconds retry_delay_{};
    bool asking_now_ = false;
    bool again_ = false;
    bool stopped_ = false;
};

Sentinel::Sentinel(asio::io_context& io, SentinelOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

Sentinel::~Sentinel() {
    impl_->stop();
}

void Sentinel::ask(std::function<void(Result<Endpoint>)> done) {
    impl_->ask(std::move(done));
}
void Sentinel::follow(Endpoint current, std::function<void(const Endpoint&)> moved, std::function<bool()> reached) {
    impl_->follow(std::move(current), std::move(moved), std::move(reached));
}
void Sentinel::recheck() {
    impl_->recheck();
}
void Sentinel::stop() {
    impl_->stop();
}

}  // namespace aegis::store::redis
