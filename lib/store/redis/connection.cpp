#include "store/redis/connection.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <deque>
#include <random>

namespace aegis::store::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Result<Endpoint> parse_url(std::string_view url) {
    const auto bad = [&] {
        return make_error(ExitCode::usage, "--redis wants redis://HOST:PORT[/DB], not '{}'", std::string(url));
    };
    constexpr std::string_view kScheme = "redis://";
    if (url.substr(0, kScheme.size()) != kScheme) return bad();
    auto rest = url.substr(kScheme.size());
    Endpoint endpoint;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        const auto db = rest.substr(slash + 1);
        if (!db.empty()) {
            const auto parsed = std::from_chars(db.data(), db.data() + db.size(), endpoint.database);
            if (parsed.ec != std::errc() || parsed.ptr != db.data() + db.size()) return bad();
        }
        rest = rest.substr(0, slash);
    }
    if (rest.empty()) return bad();
    // [v6]:port, host:port or host
    std::string_view port;
    if (rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return bad();
        endpoint.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad();
            port = rest.substr(1);
        }
    } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        endpoint.host = std::string(rest.substr(0, colon));
        port = rest.substr(colon + 1);
    } else {
        endpoint.host = std::string(rest);
    }
    if (endpoint.host.empty() || endpoint.host.find('@') != std::string::npos) return bad();
    if (!port.empty() || rest.find(':') != std::string_view::npos) {
        const auto parsed = parse_port(port);
        if (!parsed) return bad();
        endpoint.port = *parsed;
    }
    return endpoint;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    std::uint16_t port = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), port);
    if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || port == 0) return std::nullopt;
    return port;
}

std::string to_string(const Endpoint& endpoint) {
    const bool v6 = endpoint.host.find(':') != std::string::npos;
    return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", endpoint.host, v6 ? "]" : "", endpoint.port,
                       endpoint.database);
}

std::uint64_t Reply::as_uint() const {
    if (type == Type::integer) return integer < 0 ? 0 : static_cast<std::uint64_t>(integer);
    if (type != Type::string && type != Type::status) return 0;
    std::uint64_t out = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), out);
    return parsed.ec == std::errc() ? out : 0;
}

namespace {

struct ReaderDeleter {
    void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
struct ReplyDeleter {
    void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

Result<Reply> convert(const redisReply& raw) {
    Reply out;
    switch (raw.type) {
        case REDIS_REPLY_ERROR: return Error{ExitCode::failure, std::string(raw.str, raw.len), 0};
        case REDIS_REPLY_STRING:
            out.type = Reply::Type::string;
            out.text.assign(raw.str, raw.len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = Reply::Type::status;
            out.text.assign(raw.str, raw.len);
            break;
        case REDIS_REPLY_INTEGER:
            out.type = Reply::Type::integer;
            out.integer = raw.integer;
            break;
        case REDIS_REPLY_ARRAY:
            out.type = Reply::Type::array;
            out.elements.reserve(raw.elements);
            for (std::size_t i = 0; i < raw.elements; ++i) {
                // An error inside an array (EXEC, a function's table) stays a value here: a status-like text.
                const auto& element = *raw.element[i];
                if (element.type == REDIS_REPLY_ERROR) {
                    Reply failed;
                    failed.type = Reply::Type::status;
                    failed.text.assign(element.str, element.len);
                    out.elements.push_back(std::move(failed));
                    continue;
                }
                auto converted = convert(element);
                out.elements.push_back(converted ? std::move(converted.value()) : Reply{});
            }
            break;
        default: break;  // nil
    }
    return out;
}

Result<std::string> format(const Command& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    char* formatted = nullptr;
    const int length = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(), lengths.data());
    if (length < 0 || formatted == nullptr) return make_error(ExitCode::failure, "cannot format a Redis command");
    std::string out(formatted, static_cast<std::size_t>(length));
    redisFreeCommand(formatted);
    return out;
}

}  // namespace

class Connection::Impl : public std::enable_shared_from_this<Connection::Impl> {
public:
    Impl(asio::io_context& io, Endpoint endpoint, ConnectionOptions options)
        : endpoint_(std::move(endpoint)),
          options_(options),
          resolver_(io),
          socket_(io),
          deadline_timer_(io),
          retry_timer_(io),
          random_(std::random_device{}()) {}

    void start() {
        if (started_) return;
        started_ = true;
        stopped_ = false;
        connect();
    }

    void stop() {
        stopped_ = true;
        started_ = false;
        retry_timer_.cancel();
        deadline_timer_.cancel();
        resolver_.cancel();
        close_socket();
        fail_all("the Redis connection is closed");
    }

    void drain() {
        draining_ = true;
        if (waiting_.empty()) stop();
    }

    void command(Command args, ReplyHandler done) {
        if (stopped_) return done(make_error(ExitCode::failure, "the Redis connection is closed"));
        if (waiting_.size() >= options_.max_waiting)
            return done(make_error(ExitCode::failure, "{} Redis commands waiting already", waiting_.size()));
        auto wire = format(args);
        if (!wire) return done(wire.take_error());
        waiting_.push_back(Waiting{std::move(*wire), std::move(done), Clock::now() + options_.command_timeout, false});
        arm_deadline();
        if (up_) write();
    }

    void setup(Command args, SetupCheck check) { setup_.push_back(SetupStep{std::move(args), std::move(check)}); }

    void set_endpoint(Endpoint endpoint) {
        if (endpoint == endpoint_) return;
        endpoint_ = std::move(endpoint);
        attempts_ = 0;
        if (stopped_ || !started_) return;
        if (up_) return reset(fmt::format("moving to {}", to_string(endpoint_)));
        // Waiting to retry: retry now, there.
        if (retrying_) return arm_retry(std::chrono::milliseconds(0));
        // A connect under way (to a host that may drop packets until its deadline): abandoned,
        // and the new address tried at once.
        ++generation_;
        resolver_.cancel();
        close_socket();
        connect();
    }

    const Endpoint& endpoint() const { return endpoint_; }

    void subscribe(std::string channel) {
        if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end()) return;
        channels_.push_back(channel);
        if (up_) send_subscribe(channel);
    }

    std::function<void(const std::string&, const std::string&)> message_handler;
    std::function<void(bool, const std::string&)> state_handler;
    bool up_ = false;
    std::uint64_t connections_ = 0;

private:
    struct Waiting {
        std::string wire;
        ReplyHandler done;
        Clock::time_point deadline;
        bool sent = false;
    };
    struct SetupStep {
        Command args;
        SetupCheck check;
    };

    void connect() {
        if (stopped_) return;
        auto self = shared_from_this();
        const auto generation = generation_;  // a connect abandoned by set_endpoint() does nothing
        resolver_.async_resolve(
            endpoint_.host, std::to_string(endpoint_.port),
            [self, generation](const boost::system::error_code& ec, const tcp::resolver::results_type& found) {
                if (self->stopped_ || generation != self->generation_) return;
                if (ec) return self->lost(fmt::format("cannot resolve {}: {}", self->endpoint_.host, ec.message()));
                asio::async_connect(self->socket_, found,
                                    [self, generation](const boost::system::error_code& error, const tcp::endpoint&) {
                                        if (self->stopped_ || generation != self->generation_) return;
                                        if (error)
                                            return self->lost(fmt::format("cannot connect to {}: {}",
                                                                          to_string(self->endpoint_), error.message()));
                                        self->connected();
                                    });
            });
        // A connect that hangs (a stopped server accepts nothing) is ended by the deadline too.
        arm_deadline();
    }

    void connected() {
        connecting_deadline_ = {};
        boost::system::error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.set_option(asio::socket_base::keep_alive(true), ignored);
        reader_.reset(redisReaderCreate());
        up_ = true;
        attempts_ = 0;
        ++connections_;
        ++generation_;
        // SELECT, the setup commands and the subscriptions go first, ahead of whatever waited.
        std::deque<Waiting> setup;
        const auto internal = [this](std::string what, SetupCheck check = {}) {
            return [weak = weak_from_this(), generation = generation_, what = std::move(what),
                    check = std::move(check)](Result<Reply> reply) {
                auto self = weak.lock();
                // A reset since (this command failed with its connection) has been handled already.
                if (!self || self->generation_ != generation) return;
                Result<void> verdict = check ? check(reply) : reply ? Result<void>{} : Result<void>(reply.take_error());
                if (!verdict) self->reset(fmt::format("{} failed: {}", what, verdict.error().message));
            };
        };
        if (endpoint_.database != 0) {
            auto wire = format({"SELECT", std::to_string(endpoint_.database)});
            setup.push_back(
                Waiting{std::move(*wire), internal("SELECT"), Clock::now() + options_.command_timeout, false});
        }
        for (const auto& step : setup_) {
            auto wire = format(step.args);
            if (!wire) continue;
            setup.push_back(Waiting{std::move(*wire), internal(step.args.front(), step.check),
                                    Clock::now() + options_.command_timeout, false});
        }
        for (const auto& channel : channels_) {
            auto wire = format({"SUBSCRIBE", channel});
            setup.push_back(
                Waiting{std::move(*wire), internal("SUBSCRIBE"), Clock::now() + options_.command_timeout, false});
        }
        for (auto it = setup.rbegin(); it != setup.rend(); ++it) waiting_.push_front(std::move(*it));
        read();
        write();
        arm_deadline();
        if (state_handler) state_handler(true, {});
    }

    void send_subscribe(const std::string& channel) {
        auto wire = format({"SUBSCRIBE", channel});
        waiting_.push_back(Waiting{std::move(*wire),
                                   [weak = weak_from_this()](Result<Reply> reply) {
                                       auto self = weak.lock();
                                       if (self && !reply)
                                           self->reset(fmt::format("SUBSCRIBE failed: {}", reply.error().message));
                                   },
                                   Clock::now() + options_.command_timeout, false});
        arm_deadline();
        write();
    }

    // Everything not sent yet, in one write; one write in flight at a time.
    void write() {
        if (!up_ || writing_) return;
        outgoing_.clear();
        for (auto& waiting : waiting_) {
            if (waiting.sent) continue;
            outgoing_ += waiting.wire;
            waiting.sent = true;
        }
        if (outgoing_.empty()) return;
        writing_ = true;
        auto self = shared_from_this();
        const auto generation = generation_;
        asio::async_write(socket_, asio::buffer(outgoing_),
                          [self, generation](const boost::system::error_code& ec, std::size_t) {
                              if (generation != self->generation_) return;
                              self->writing_ = false;
                              if (ec) return self->reset(fmt::format("write failed: {}", ec.message()));
                              self->write();
                          });
    }

    void read() {
        auto self = shared_from_this();
        const auto generation = generation_;
        socket_.async_read_some(asio::buffer(incoming_),
                                [self, generation](const boost::system::error_code& ec, std::size_t bytes) {
                                    if (generation != self->generation_) return;
                                    if (ec)
                                        return self->reset(ec == asio::error::eof ? std::string("closed by the server")
                                                                                  : "read failed: " + ec.message());
                                    self->on_bytes(bytes);
                                });
    }

    void on_bytes(std::size_t bytes) {
        if (redisReaderFeed(reader_.get(), incoming_.data(), bytes) != REDIS_OK)
            return reset("cannot parse the server's reply");
        const auto generation = generation_;
        for (;;) {
            void* raw = nullptr;
            if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK)
                return reset(fmt::format("cannot parse the server's reply: {}", reader_->errstr));
            if (raw == nullptr) break;
            std::unique_ptr<redisReply, ReplyDeleter> owned(static_cast<redisReply*>(raw));
            auto reply = convert(*owned);
            if (is_message(reply)) {
                if (message_handler) message_handler(reply->elements[1].text, reply->elements[2].text);
            } else {
                if (waiting_.empty() || !waiting_.front().sent) return reset("a reply nobody asked for");
                auto done = std::move(waiting_.front().done);
                waiting_.pop_front();
                done(std::move(reply));
            }
            if (generation != generation_ || stopped_) return;  // a handler reset or stopped the connection
            if (draining_ && waiting_.empty()) return stop();
        }
        arm_deadline();
        read();
    }

    [[nodiscard]] static bool is_message(const Result<Reply>& reply) {
        return reply && reply->type == Reply::Type::array && reply->elements.size() == 3 &&
               reply->elements[0].text == "message";
    }

    // The timer follows the earliest deadline of what waits (and of a connect under way).
    void arm_deadline() {
        Clock::time_point earliest = Clock::time_point::max();
        for (const auto& waiting : waiting_) earliest = std::min(earliest, waiting.deadline);
        if (!up_ && connecting_deadline_ == Clock::time_point{} && started_)
            connecting_deadline_ = Clock::now() + options_.command_timeout;
        if (!up_ && connecting_deadline_ != Clock::time_point{}) earliest = std::min(earliest, connecting_deadline_);
        if (earliest == Clock::time_point::max() || earliest == armed_for_) return;
        armed_for_ = earliest;
        deadline_timer_.expires_at(earliest);
        deadline_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            self->armed_for_ = {};
            self->on_deadline();
        });
    }

    void on_deadline() {
        const auto now = Clock::now();
        bool sent_expired = false;
        for (const auto& waiting : waiting_)
            if (waiting.sent && waiting.deadline <= now) sent_expired = true;
        if (sent_expired) {
            reset(fmt::format("no reply within {} ms", options_.command_timeout.count()));
        } else {
            fail_expired(now);
            if (!up_ && connecting_deadline_ != Clock::time_point{} && connecting_deadline_ <= now && !retrying_)
                reset(fmt::format("cannot connect to {} within {} ms", to_string(endpoint_),
                                  options_.command_timeout.count()));
        }
        arm_deadline();
    }

    void fail_expired(Clock::time_point now) {
        std::vector<ReplyHandler> expired;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (!it->sent && it->deadline <= now) {
                expired.push_back(std::move(it->done));
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& done : expired)
            done(Error{ExitCode::timeout,
                       fmt::format("Redis at {} did not answer within {} ms", to_string(endpoint_),
                                   options_.command_timeout.count()),
                       0});
    }

    // The connection is unusable: what was sent fails (it may or may not have run), what was
    // not sent waits for the next connection within its deadline.
    void reset(const std::string& why) {
        if (stopped_) return;
        const bool was_up = up_;
        ++generation_;
        up_ = false;
        writing_ = false;
        close_socket();
        std::vector<ReplyHandler> sent;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (it->sent) {
                sent.push_back(std::move(it->done));
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        }
        last_error_ = why;
        for (auto& done : sent)
            done(Error{ExitCode::failure, fmt::format("Redis at {}: {}", to_string(endpoint_), why), 0});
        fail_expired(Clock::now());
        if (was_up && state_handler) state_handler(false, why);
        schedule_reconnect();
    }

    void lost(const std::string& why) {
        last_error_ = why;
        close_socket();
        fail_expired(Clock::now());
        schedule_reconnect();
    }

    void schedule_reconnect() {
        if (stopped_ || retrying_) return;
        retrying_ = true;
        const auto cap = std::min<std::int64_t>(options_.backoff_max.count(), options_.backoff_min.count()
                                                                                  << std::min(attempts_, 16U));
        ++attempts_;
        std::uniform_int_distribution<std::int64_t> jitter(cap / 2, std::max<std::int64_t>(cap, 1));
        arm_retry(std::chrono::milliseconds(jitter(random_)));
    }

    // (Re)arms the retry timer: a wait armed before is cancelled and does nothing.
    void arm_retry(std::chrono::milliseconds delay) {
        retry_timer_.expires_after(delay);
        retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            self->retrying_ = false;
            self->connecting_deadline_ = Clock::now() + self->options_.command_timeout;
            self->connect();
        });
    }

    void close_socket() {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        connecting_deadline_ = {};
    }

    void fail_all(const std::string& why) {
        auto all = std::exchange(waiting_, {});
        up_ = false;
        for (auto& waiting : all) waiting.done(make_error(ExitCode::failure, "{}", why));
    }

    Endpoint endpoint_;
    ConnectionOptions options_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer deadline_timer_;
    asio::steady_timer retry_timer_;
    std::unique_ptr<redisReader, ReaderDeleter> reader_;
    std::deque<Waiting> waiting_;
    std::vector<std::string> channels_;
    std::vector<SetupStep> setup_;
    std::string outgoing_;
    std::array<char, 64 * 1024> incoming_{};
    std::mt19937_64 random_;
    std::uint64_t generation_ = 0;  // a handler of an older socket finds it changed and does nothing
    Clock::time_point armed_for_{};
    Clock::time_point connecting_deadline_{};
    std::string last_error_;
    unsigned attempts_ = 0;
    bool started_ = false;
    bool stopped_ = false;
    bool writing_ = false;
    bool retrying_ = false;
    bool draining_ = false;
};

Connection::Connection(asio::io_context& io, Endpoint endpoint, ConnectionOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(endpoint), options)) {}

Connection::~Connection() {
    impl_->stop();
}

void Connection::start() {
    impl_->start();
}
void Connection::stop() {
    impl_->stop();
}
void Connection::drain() {
    impl_->drain();
}
void Connection::command(Command args, ReplyHandler done) {
    impl_->command(std::move(args), std::move(done));
}
void Connection::setup(Command args, SetupCheck check) {
    impl_->setup(std::move(args), std::move(check));
}
void Connection::set_endpoint(Endpoint endpoint) {
    impl_->set_endpoint(std::move(endpoint));
}
const Endpoint& Connection::endpoint() const {
    return impl_->endpoint();
}
void Connection::subscribe(std::string channel) {
    impl_->subscribe(std::move(channel));
}
void Connection::on_message(std::function<void(const std::string&, const std::string&)> handler) {
    impl_->message_handler = std::move(handler);
}
void Connection::on_state(std::function<void(bool, const std::string&)> handler) {
    impl_->state_handler = std::move(handler);
}
bool Connection::connected() const {
    return impl_->up_;
}
std::uint64_t Connection::connections() const {
    return impl_->connections_;
}

}  // namespace aegis::store::redis
