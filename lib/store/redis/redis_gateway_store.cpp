#include "store/redis/redis_gateway_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstring>
#include <optional>
#include <thread>

#include "channel/channel.h"
#include "crypto/primitives.h"
#include "store/redis/aegis_lua.h"

namespace aegis::store::redis {

namespace {

// A commit routed again this many times in a row (the sets keep changing under it) fails.
constexpr int kMaxReroutes = 8;

std::string hex(const crypto::PublicKey& key) {
    return crypto::hex_encode(ByteView(key.data(), key.size()));
}

std::optional<crypto::PublicKey> key_from_hex(std::string_view text) {
    auto bytes = crypto::hex_decode(text);
    crypto::PublicKey key{};
    if (!bytes || bytes->size() != key.size()) return std::nullopt;
    std::memcpy(key.data(), bytes->data(), key.size());
    return key;
}

std::string token_hex(const GatewayToken& token) {
    return crypto::hex_encode(ByteView(token.data(), token.size()));
}

GatewayToken token_from_hex(std::string_view text) {
    GatewayToken token{};
    if (auto bytes = crypto::hex_decode(text); bytes && bytes->size() == token.size())
        std::memcpy(token.data(), bytes->data(), token.size());
    return token;
}

// "id\npattern\npattern..." (patterns cannot hold a newline: channel grammar).
std::pair<std::string, std::vector<std::string>> split_set(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = std::min(text.find('\n', start), text.size());
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    if (lines.empty()) return {};
    std::string id = std::move(lines.front());
    lines.erase(lines.begin());
    std::erase_if(lines, [](const std::string& line) { return line.empty(); });
    return {std::move(id), std::move(lines)};
}

Error unexpected(std::string_view what) {
    return make_error(ExitCode::failure, "unexpected reply from Redis to {}", what);
}

// Runs one command on a private event loop and waits for its answer.
Result<Reply> run_now(boost::asio::io_context& io, Connection& connection, Command command) {
    std::optional<Result<Reply>> answer;
    connection.command(std::move(command), [&answer](Result<Reply> reply) { answer.emplace(std::move(reply)); });
    while (!answer) {
        if (io.run_one() == 0) return make_error(ExitCode::failure, "the Redis connection stopped");
    }
    return std::move(*answer);
}

std::string config_value(const Reply& reply) {
    // CONFIG GET NAME -> [NAME, VALUE]
    return reply.elements.size() >= 2 ? reply.elements[1].text : std::string();
}

std::string host_port(const Endpoint& endpoint) {
    const bool v6 = endpoint.host.find(':') != std::string::npos;
    return fmt::format("{}{}{}:{}", v6 ? "[" : "", endpoint.host, v6 ? "]" : "", endpoint.port);
}

// The master the sentinels name, once its ROLE says so: asked again after a pause, doubling, for
// up to `limit` (a failover under way ends within it, or the operator must look).
Result<Endpoint> find_master(const SentinelOptions& options, unsigned database, std::chrono::milliseconds timeout,
                             std::chrono::milliseconds limit) {
    boost::asio::io_context io;
    Sentinel sentinel(io, options);
    const auto until = std::chrono::steady_clock::now() + limit;
    std::string why;
    for (auto pause = options.retry_min;; pause = std::min(pause * 2, options.retry_max)) {
        std::optional<Result<Endpoint>> answer;
        sentinel.ask([&answer](Result<Endpoint> found) { answer.emplace(std::move(found)); });
        while (!answer && io.run_one() > 0) {
        }
        if (answer && *answer) {
            auto master = std::move(**answer);
            master.database = database;
            ConnectionOptions probing;
            probing.command_timeout = timeout;
            Connection probe(io, master, probing);
            probe.start();
            auto checked = check_master_role(run_now(io, probe, {"ROLE"}));
            if (checked) return master;
            why = fmt::format("the sentinels name {} as master {}, but {}", host_port(master), options.master,
                              checked.error().message);
        } else {
            why = answer ? answer->error().message : "the sentinel connections stopped";
        }
        if (std::chrono::steady_clock::now() + pause >= until)
            return make_error(ExitCode::failure, "cannot find the Redis master {} within {} ms: {}", options.master,
                              limit.count(), why);
        std::this_thread::sleep_for(pause);
    }
}

}  // namespace

struct RedisGatewayState::PendingCommit {
    StateCommit commit;
    Completion<CommitOutcome> done;
    int reroutes = 0;
};

RedisGatewayState::RedisGatewayState(boost::asio::io_context& io, const RedisStoreOptions& options)
    : options_(options) {
    std::array<std::uint8_t, 8> name{};
    crypto::random_bytes(name);
    node_ = crypto::hex_encode(ByteView(name.data(), name.size()));
    ConnectionOptions connection;
    connection.command_timeout = options.command_timeout;
    commands_ = std::make_unique<Connection>(io, options.endpoint, connection);
    messages_ = std::make_unique<Connection>(io, options.endpoint, connection);
    if (options.sentinel) sentinel_ = std::make_unique<Sentinel>(io, *options.sentinel);
}

RedisGatewayState::~RedisGatewayState() {
    *alive_ = false;
}

std::string RedisGatewayState::channel(std::string_view name) const {
    // Pub/sub is not per database: the database is in the channel's name.
    return fmt::format("aegis:{}:{}", options_.endpoint.database, name);
}

Result<std::unique_ptr<RedisGatewayState>> RedisGatewayState::open(boost::asio::io_context& io,
                                                                   const RedisStoreOptions& given,
                                                                   const std::function<void(std::string_view)>& warn) {
    auto options = given;
    if (options.sentinel) {
        auto master =
            find_master(*options.sentinel, options.endpoint.database, options.command_timeout, kFindMasterFor);
        if (!master) return master.take_error();
        options.endpoint = std::move(*master);
    }
    const auto where = to_string(options.endpoint);
    boost::asio::io_context private_io;
    ConnectionOptions checking;
    checking.command_timeout = options.command_timeout;
    Connection check(private_io, options.endpoint, checking);
    check.start();
    if (auto pong = run_now(private_io, check, {"PING"}); !pong)
        return make_error(ExitCode::failure, "cannot reach Redis at {}: {}", where, pong.error().message);
    if (auto policy = run_now(private_io, check, {"CONFIG", "GET", "maxmemory-policy"}); !policy) {
        warn(fmt::format("cannot read the maxmemory-policy of Redis at {} ({}): make sure it is noeviction", where,
                         policy.error().message));
    } else if (const auto value = config_value(*policy); value.rfind("allkeys-", 0) == 0) {
        return make_error(ExitCode::bad_input,
                          "Redis at {} has maxmemory-policy {}, which may evict stored messages: set it to noeviction",
                          where, value);
    }
    auto appendonly = run_now(private_io, check, {"CONFIG", "GET", "appendonly"});
    auto appendfsync = run_now(private_io, check, {"CONFIG", "GET", "appendfsync"});
    if (!appendonly || !appendfsync) {
        warn(
            fmt::format("cannot read the persistence settings of Redis at {}: a puback promises only what Redis "
                        "keeps",
                        where));
    } else if (config_value(*appendonly) != "yes" || config_value(*appendfsync) != "always") {
        warn(
            fmt::format("Redis at {} has appendonly {} and appendfsync {}: an acknowledged message may be lost "
                        "when Redis stops (set appendonly yes and appendfsync always)",
                        where, config_value(*appendonly), config_value(*appendfsync)));
    }
    if (auto loaded = run_now(private_io, check, {"FUNCTION", "LOAD", "REPLACE", std::string(kFunctionLibrary)});
        !loaded)
        return make_error(ExitCode::failure, "cannot load the aegis function library into Redis at {}: {}", where,
                          loaded.error().message);
    std::unique_ptr<RedisGatewayState> store(new RedisGatewayState(io, options));
    auto sets = run_now(private_io, check, {"FCALL", "aegis_subs_since", "0", "0"});
    if (!sets) return make_error(ExitCode::failure, "cannot read the subscription sets: {}", sets.error().message);
    if (auto applied = store->apply_sets(*sets); !applied) return applied.take_error();
    auto summary = run_now(private_io, check, {"FCALL", "aegis_summary", "0"});
    if (!summary) return make_error(ExitCode::failure, "cannot read the identities: {}", summary.error().message);
    for (std::size_t i = 0; i + 3 < summary->elements.size(); i += 4) {
        const auto key = key_from_hex(summary->elements[i].text);
        if (!key) continue;
        store->summary_[*key] = IdentitySummary{summary->elements[i + 1].text, summary->elements[i + 2].as_uint(),
                                                summary->elements[i + 3].as_uint()};
    }
    check.stop();
    store->start();
    return store;
}

void RedisGatewayState::start() {
    std::weak_ptr<bool> alive = alive_;
    commands_->on_state([this, alive](bool up, const std::string& why) {
        if (alive.expired()) return;
        healthy_ = up;
        unhealthy_why_ = up ? std::string() : why;
        // The master lost, or found a replica: the sentinels are asked again.
        if (!up && sentinel_) sentinel_->recheck();
    });
    messages_->on_message([this, alive](const std::string& name, const std::string& payload) {
        if (!alive.expired()) on_message(name, payload);
    });
    messages_->on_state([this, alive](bool up, const std::string&) {
        if (alive.expired() || !up) return;
        // Hints may have been missed while it was down: catch up and wake every session held here.
        catch_up([](Result<void>) {});
        if (events_.inbox_grew)
            for (const auto& [key, epoch] : epochs_) events_.inbox_grew(key);
    });
    messages_->subscribe(channel("node:" + node_));
    messages_->subscribe(channel("subs"));
    messages_->subscribe(channel("reload"));
    // A replica is never written to: its connection is reset (and the sentinels asked again).
    if (sentinel_) commands_->setup({"ROLE"}, check_master_role);
    // A new server (a promoted replica, one restarted empty) gets the library if it lacks it.
    commands_->setup({"FUNCTION", "LOAD", std::string(kFunctionLibrary)}, [](const Result<Reply>& loaded) {
        if (loaded || loaded.error().message.find("already exists") != std::string::npos) return Result<void>{};
        return Result<void>(make_error(ExitCode::failure, "{}", loaded.error().message));
    });
    if (sentinel_) {
        sentinel_->follow(
            options_.endpoint,
            [this, alive](const Endpoint& master) {
                if (!alive.expired()) move_to(master);
            },
            [this, alive] { return !alive.expired() && commands_->connected(); });
    }
    commands_->start();
    messages_->start();
}

void RedisGatewayState::move_to(const Endpoint& master) {
    auto next = master;
    next.database = options_.endpoint.database;
    if (next == options_.endpoint) return;
    options_.endpoint = next;
    if (options_.log)
        options_.log(fmt::format("redis master {} is now {}", options_.sentinel->master, host_port(next)));
    commands_->set_endpoint(next);
    messages_->set_endpoint(next);
}

void RedisGatewayState::close() {
    if (sentinel_) sentinel_->stop();
    messages_->stop();
    commands_->drain();
}

void RedisGatewayState::watch(StoreEvents events) {
    events_ = std::move(events);
}

void RedisGatewayState::announce_reload() {
    // A hint only: a gateway that misses it (Redis down) keeps its files as last read.
    commands_->command({"PUBLISH", channel("reload"), node_}, [](Result<Reply>) {});
}

void RedisGatewayState::on_message(const std::string& name, const std::string& payload) {
    if (name == channel("reload")) {
        if (payload != node_ && events_.reload_asked) events_.reload_asked(payload);
        return;
    }
    if (name == channel("subs")) {
        std::uint64_t version = 0;
        std::from_chars(payload.data(), payload.data() + payload.size(), version);
        if (version > view_version_) catch_up([](Result<void>) {});
        return;
    }
    // "w K K ..." or "r K EPOCH"
    std::vector<std::string_view> words;
    std::string_view rest = payload;
    while (!rest.empty()) {
        const auto space = std::min(rest.find(' '), rest.size());
        if (space > 0) words.push_back(rest.substr(0, space));
        rest = rest.substr(std::min(space + 1, rest.size()));
    }
    if (words.size() >= 2 && words[0] == "w") {
        for (std::size_t i = 1; i < words.size(); ++i)
            if (auto key = key_from_hex(words[i]); key && events_.inbox_grew) events_.inbox_grew(*key);
    } else if (words.size() == 3 && words[0] == "r") {
        const auto key = key_from_hex(words[1]);
        std::uint64_t epoch = 0;
        std::from_chars(words[2].data(), words[2].data() + words[2].size(), epoch);
        if (!key) return;
        const auto held = epochs_.find(*key);
        if (held == epochs_.end() || held->second >= epoch) return;  // not here, or this one is the newer
        epochs_.erase(held);
        if (events_.opened_elsewhere) events_.opened_elsewhere(*key);
    }
}

Result<void> RedisGatewayState::apply_sets(const Reply& reply) {
    if (reply.type != Reply::Type::array || reply.elements.empty()) return unexpected("aegis_subs_since");
    const auto version = reply.elements[0].as_uint();
    for (std::size_t i = 1; i + 1 < reply.elements.size(); i += 2) {
        const auto key = key_from_hex(reply.elements[i].text);
        if (!key) continue;
        auto [id, patterns] = split_set(reply.elements[i + 1].text);
        if (patterns.empty()) {
            sets_.erase(*key);
            routes_.set(*key, {});
        } else {
            routes_.set(*key, patterns);
            sets_[*key] = Set{std::move(id), std::move(patterns)};
        }
    }
    view_version_ = version;
    return {};
}

// Reads the sets changed since the view's version; calls made meanwhile wait for the same read.
void RedisGatewayState::catch_up(std::function<void(Result<void>)> then) {
    after_catch_up_.push_back(std::move(then));
    if (catching_up_) return;
    catching_up_ = true;
    std::weak_ptr<bool> alive = alive_;
    commands_->command({"FCALL", "aegis_subs_since", "0", std::to_string(view_version_)},
                       [this, alive](Result<Reply> reply) {
                           if (alive.expired()) return;
                           catching_up_ = false;
                           Result<void> applied;
                           if (!reply) {
                               applied = reply.take_error();
                           } else if (reply->type == Reply::Type::array && !reply->elements.empty() &&
                                      reply->elements[0].as_uint() < view_version_) {
                               // The server's version went back (its data was lost): read every set again.
                               sets_.clear();
                               routes_.clear();
                               view_version_ = 0;
                               catching_up_ = false;
                               auto waiting = std::exchange(after_catch_up_, {});
                               for (auto& next : waiting) catch_up(std::move(next));
                               return;
                           } else {
                               applied = apply_sets(*reply);
                           }
                           auto waiting = std::exchange(after_catch_up_, {});
                           for (auto& next : waiting) next(applied);
                       });
}

std::vector<Subscriber> RedisGatewayState::subscribers(std::string_view channel_name) const {
    std::vector<Subscriber> out;
    for (const auto& key : routes_.candidates(channel_name)) {
        const auto found = sets_.find(key);
        if (found == sets_.end()) continue;
        Subscriber subscriber{key, {}, {}};
        for (const auto& pattern : found->second.patterns)
            if (channel::matches(pattern, channel_name)) subscriber.patterns.push_back(pattern);
        if (subscriber.patterns.empty()) continue;
        subscriber.id = found->second.id;
        out.push_back(std::move(subscriber));
    }
    return out;
}

void RedisGatewayState::open_session(const crypto::PublicKey& key, const std::string& id, const GatewayToken& presented,
                                     std::uint64_t now_ms, Completion<OpenedSession> done) {
    GatewayToken fresh{};
    crypto::random_bytes(fresh);
    const auto presented_text = presented == GatewayToken{} ? std::string() : token_hex(presented);
    std::weak_ptr<bool> alive = alive_;
    commands_->command({"FCALL", "aegis_open", "0", hex(key), id, presented_text, token_hex(fresh),
                        std::to_string(now_ms), std::to_string(options_.limits.max_age_ms), node_, channel("")},
                       [this, alive, key, done = std::move(done)](Result<Reply> reply) {
                           if (!reply) return done(reply.take_error());
                           if (reply->elements.size() < 5) return done(unexpected("aegis_open"));
                           OpenedSession opened;
                           opened.resumed = reply->elements[0].as_uint() == 1;
                           opened.token = token_from_hex(reply->elements[1].text);
                           opened.acknowledged = reply->elements[2].as_uint();
                           opened.patterns = split_set(reply->elements[4].text).second;
                           if (!alive.expired()) epochs_[key] = reply->elements[3].as_uint();
                           done(std::move(opened));
                       });
}

void RedisGatewayState::session_closed(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                                       std::uint64_t now_ms) {
    (void)id;
    const auto held = epochs_.find(key);
    const auto epoch = held == epochs_.end() ? std::uint64_t{0} : held->second;
    if (held != epochs_.end()) epochs_.erase(held);
    // Token expiry counts from here; a failure only shortens how long the token resumes.
    commands_->command(
        {"FCALL", "aegis_close", "0", hex(key), token_hex(token), std::to_string(now_ms), std::to_string(epoch)},
        [](Result<Reply>) {});
}

void RedisGatewayState::save_subscriptions(const crypto::PublicKey& key, const std::string& id,
                                           const std::vector<std::string>& patterns, Completion<void> done) {
    const auto joined = fmt::format("{}", fmt::join(patterns, "\n"));
    std::weak_ptr<bool> alive = alive_;
    commands_->command({"FCALL", "aegis_subscribe", "0", hex(key), id, joined, channel("")},
                       [this, alive, done = std::move(done)](Result<Reply> reply) {
                           if (!reply) return done(reply.take_error());
                           if (alive.expired()) return done(Result<void>{});
                           // This gateway routes by the new set at once, and by whatever came before it.
                           catch_up(done);
                       });
}

void RedisGatewayState::commit(StateCommit commit, Completion<CommitOutcome> done) {
    send_commit(std::make_shared<PendingCommit>(PendingCommit{std::move(commit), std::move(done), 0}));
}

void RedisGatewayState::send_commit(const std::shared_ptr<PendingCommit>& pending) {
    const auto& commit = pending->commit;
    Command command{"FCALL",
                    "aegis_commit",
                    "0",
                    std::to_string(view_version_),
                    node_,
                    channel(""),
                    std::to_string(commit.now_ms),
                    std::to_string(options_.limits.max_messages),
                    std::to_string(commit.acknowledgements.size())};
    for (const auto& [key, sequence] : commit.acknowledgements) {
        command.push_back(hex(key));
        command.push_back(std::to_string(sequence));
    }
    command.push_back(std::to_string(commit.appends.size()));
    for (const auto& append : commit.appends) {
        command.push_back(append.channel);
        command.emplace_back(reinterpret_cast<const char*>(append.batch.data()), append.batch.size());
        command.push_back(std::to_string(append.messages));
        command.push_back(std::to_string(append.recipients.size()));
        for (const auto& key : append.recipients) command.push_back(hex(key));
    }
    std::weak_ptr<bool> alive = alive_;
    commands_->command(std::move(command), [this, alive, pending](Result<Reply> reply) {
        if (!reply) return pending->done(reply.take_error());
        if (reply->type != Reply::Type::array || reply->elements.empty())
            return pending->done(unexpected("aegis_commit"));
        if (reply->elements[0].text == "stale") {
            if (alive.expired()) return pending->done(make_error(ExitCode::failure, "the Redis store is closed"));
            if (++pending->reroutes > kMaxReroutes || !pending->commit.route)
                return pending->done(make_error(ExitCode::failure,
                                                "the subscription sets kept changing during {} attempts to store",
                                                pending->reroutes));
            catch_up([this, alive, pending](Result<void> caught) {
                if (!caught) return pending->done(caught.take_error());
                if (alive.expired()) return pending->done(make_error(ExitCode::failure, "the Redis store is closed"));
                for (auto& append : pending->commit.appends) append.recipients = pending->commit.route(append);
                send_commit(pending);
            });
            return;
        }
        CommitOutcome outcome;
        for (std::size_t i = 1; i + 1 < reply->elements.size(); i += 2)
            outcome.dropped_full[reply->elements[i].text] += reply->elements[i + 1].as_uint();
        // Routed again: recipients the gateway did not know of may hold their session here.
        if (pending->reroutes > 0 && !alive.expired() && events_.inbox_grew)
            for (const auto& append : pending->commit.appends)
                for (const auto& key : append.recipients) events_.inbox_grew(key);
        if (options_.wait_replicas == 0 || alive.expired()) return pending->done(std::move(outcome));
        // Stored on the primary; acknowledged once the replicas asked for have it too. Short of
        // them it fails: the publisher sends again (a copy the receivers drop by message id).
        const auto wanted = options_.wait_replicas;
        commands_->command({"WAIT", std::to_string(wanted), std::to_string(options_.wait_timeout.count())},
                           [pending, wanted, outcome = std::move(outcome)](Result<Reply> waited) mutable {
                               if (!waited) return pending->done(waited.take_error());
                               if (waited->type != Reply::Type::integer) return pending->done(unexpected("WAIT"));
                               if (waited->as_uint() < wanted)
                                   return pending->done(make_error(
                                       ExitCode::failure, "only {} of {} Redis replicas acknowledged the write in time",
                                       waited->as_uint(), wanted));
                               pending->done(std::move(outcome));
                           });
    });
}

void RedisGatewayState::read_after(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                                   Completion<std::vector<StoredBatch>> done) {
    commands_->command({"XRANGE", fmt::format("aegis:{{{}}}:q", hex(key)), fmt::format("({}-0", after), "+", "COUNT",
                        std::to_string(limit)},
                       [done = std::move(done)](Result<Reply> reply) {
                           if (!reply) return done(reply.take_error());
                           std::vector<StoredBatch> out;
                           for (const auto& entry : reply->elements) {
                               if (entry.elements.size() != 2) return done(unexpected("XRANGE"));
                               StoredBatch batch;
                               const auto& id = entry.elements[0].text;
                               std::from_chars(id.data(), id.data() + id.size(), batch.sequence);
                               const auto& fields = entry.elements[1].elements;
                               for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
                                   const auto& name = fields[i].text;
                                   const auto& value = fields[i + 1];
                                   if (name == "c") {
                                       batch.channel = value.text;
                                   } else if (name == "b") {
                                       batch.batch.assign(value.text.begin(), value.text.end());
                                   } else if (name == "m") {
                                       batch.messages = value.as_uint();
                                   } else if (name == "t") {
                                       batch.stored_ms = value.as_uint();
                                   }
                               }
                               out.push_back(std::move(batch));
                           }
                           done(std::move(out));
                       });
}

void RedisGatewayState::expire(std::uint64_t now_ms, Completion<std::map<std::string, std::uint64_t>> done) {
    commands_->command(
        {"FCALL", "aegis_expire", "0", std::to_string(now_ms), std::to_string(options_.limits.max_age_ms)},
        [done = std::move(done)](Result<Reply> reply) {
            if (!reply) return done(reply.take_error());
            std::map<std::string, std::uint64_t> out;
            for (std::size_t i = 0; i + 1 < reply->elements.size(); i += 2)
                out[reply->elements[i].text] += reply->elements[i + 1].as_uint();
            done(std::move(out));
        });
    refresh_summary();
}

void RedisGatewayState::refresh_summary() {
    std::weak_ptr<bool> alive = alive_;
    commands_->command({"FCALL", "aegis_summary", "0"}, [this, alive](Result<Reply> reply) {
        if (!reply || alive.expired()) return;
        std::map<crypto::PublicKey, IdentitySummary> summary;
        for (std::size_t i = 0; i + 3 < reply->elements.size(); i += 4) {
            const auto key = key_from_hex(reply->elements[i].text);
            if (!key) continue;
            summary[*key] = IdentitySummary{reply->elements[i + 1].text, reply->elements[i + 2].as_uint(),
                                            reply->elements[i + 3].as_uint()};
        }
        summary_ = std::move(summary);
    });
}

InboxTotals RedisGatewayState::totals() const {
    InboxTotals totals;
    for (const auto& [key, summary] : summary_) totals.messages += summary.pending;
    totals.identities = summary_.size();
    return totals;
}

std::map<crypto::PublicKey, IdentitySummary> RedisGatewayState::identities() const {
    return summary_;
}

void RedisGatewayState::probe(Completion<void> done) {
    if (commands_->connected() && healthy_) return done(Result<void>{});
    done(make_error(ExitCode::failure, "Redis at {}: {}", to_string(options_.endpoint),
                    unhealthy_why_.empty() ? "not connected" : unhealthy_why_));
}

}  // namespace aegis::store::redis
