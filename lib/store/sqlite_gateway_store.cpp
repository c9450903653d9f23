#include "store/sqlite_gateway_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "channel/channel.h"
#include "store/log_syncer.h"
#include "store/sqlite.h"

namespace aegis::store {

namespace {

constexpr const char* kLabel = "Aegis gateway state file";

// Inbox rows are keyed by (identity, sequence): the sequence is the identity's deliver number.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS identities (
    key BLOB PRIMARY KEY,
    id TEXT NOT NULL,
    patterns TEXT NOT NULL DEFAULT '',
    token BLOB,
    token_used_ms INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbox (
    key BLOB NOT NULL,
    seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    batch BLOB NOT NULL,
    messages INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_by_age ON inbox (stored_ms);
)sql";

ByteView view(const crypto::PublicKey& key) {
    return {key.data(), key.size()};
}

crypto::PublicKey key_from(ByteView bytes) {
    crypto::PublicKey key{};
    if (bytes.size() == key.size()) std::memcpy(key.data(), bytes.data(), key.size());
    return key;
}

// Patterns cannot contain a newline (channel grammar), so one line each.
std::string join_patterns(const std::vector<std::string>& patterns) {
    return fmt::format("{}", fmt::join(patterns, "\n"));
}

std::vector<std::string> split_patterns(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = std::min(text.find('\n', start), text.size());
        if (end > start) out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

Error foreign(const Database& database) {
    return make_error(ExitCode::bad_input, "{} is not an {} (it is another program's SQLite database)",
                      database.path().string(), database.label());
}

// True: empty file, ours to initialise; false: an existing gateway file this build reads.
Result<bool> check_identity(Database& database) {
    auto application_id = database.query_int("PRAGMA application_id");
    if (!application_id) return application_id.take_error();
    auto version = database.query_int("PRAGMA user_version");
    if (!version) return version.take_error();
    if (*application_id == 0) {
        auto objects = database.query_int("SELECT count(*) FROM sqlite_master");
        if (!objects) return objects.take_error();
        if (*objects != 0 || *version != 0) return foreign(database);
        return true;
    }
    if (*application_id != kGatewayApplicationId) return foreign(database);
    if (*version > kGatewaySchemaVersion)
        return make_error(ExitCode::bad_input,
                          "{} was written by a newer Aegis (schema {}; this version reads up to {})",
                          database.path().string(), *version, kGatewaySchemaVersion);
    if (*version < 1)
        return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): schema version {}",
                          database.path().string(), database.label(), *version);
    return false;
}

Result<void> initialise(Database& database) {
    auto transaction = database.begin();
    if (!transaction) return transaction.take_error();
    auto fresh = check_identity(database);
    if (!fresh) return fresh.take_error();
    if (!*fresh) return {};
    if (auto created = database.exec(kSchema); !created) return created;
    if (auto tagged = database.exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}",
                                                kGatewayApplicationId, kGatewaySchemaVersion));
        !tagged)
        return tagged;
    return transaction->commit();
}

}  // namespace

SqliteGatewayStore::SqliteGatewayStore(std::unique_ptr<Database> database, GatewayLimits limits)
    : database_(std::move(database)), limits_(limits) {}

SqliteGatewayStore::~SqliteGatewayStore() = default;

Result<std::unique_ptr<SqliteGatewayStore>> SqliteGatewayStore::open(const std::filesystem::path& file,
                                                                     GatewayLimits limits) {
    auto opened = Database::open(file, OpenMode::read_write_create, kLabel);
    if (!opened) return opened.take_error();
    auto database = std::move(*opened);
    auto fresh = check_identity(*database);
    if (!fresh) return fresh.take_error();
    if (!*fresh) {
        if (auto sound = database->check_integrity(); !sound) return sound.take_error();
    }
    // WAL with synchronous=FULL: a puback promises the batch survives power loss.
    if (auto logged = database->use_write_ahead_log(); !logged) return logged.take_error();
    if (*fresh) {
        if (auto initialised = initialise(*database); !initialised) return initialised.take_error();
    }
    std::unique_ptr<SqliteGatewayStore> store(new SqliteGatewayStore(std::move(database), limits));
    if (auto loaded = store->reload(); !loaded) return loaded.take_error();
    return store;
}

Result<void> SqliteGatewayStore::reload() {
    identities_.clear();
    routes_.clear();
    forget_all_recent();  // they may hold appends the failed transaction took back
    auto rows = database_->prepare("SELECT key, id, patterns, token, token_used_ms, last_seq, acked FROM identities");
    if (!rows) return rows.take_error();
    for (;;) {
        auto more = rows->step();
        if (!more) return more.take_error();
        if (!*more) break;
        IdentityState state;
        state.id = rows->column_text(1);
        state.patterns = split_patterns(rows->column_text(2));
        const auto token = rows->column_blob_view(3);
        if (token.size() == state.token.size()) std::memcpy(state.token.data(), token.data(), token.size());
        state.token_used_ms = rows->column_uint(4);
        state.last_sequence = rows->column_uint(5);
        state.acknowledged = rows->column_uint(6);
        const auto key = key_from(rows->column_blob_view(0));
        routes_.set(key, state.patterns);
        identities_[key] = std::move(state);
    }
    auto pending = database_->prepare("SELECT key, sum(messages) FROM inbox GROUP BY key");
    if (!pending) return pending.take_error();
    for (;;) {
        auto more = pending->step();
        if (!more) return more.take_error();
        if (!*more) break;
        const auto found = identities_.find(key_from(pending->column_blob_view(0)));
        if (found != identities_.end()) found->second.pending = pending->column_uint(1);
    }
    for (const auto& [key, unsaved] : unsaved_tokens_) {  // newer than the file's
        auto& state = identities_[key];
        state.id = unsaved.id;
        state.token = unsaved.token;
        state.token_used_ms = unsaved.used_ms;
    }
    return {};
}

std::optional<IdentityState> SqliteGatewayStore::identity(const crypto::PublicKey& key) const {
    const auto found = identities_.find(key);
    if (found == identities_.end()) return std::nullopt;
    return found->second;
}

InboxTotals SqliteGatewayStore::totals() const {
    InboxTotals totals;
    for (const auto& [key, state] : identities_) totals.messages += state.pending;
    totals.identities = identities_.size();
    return totals;
}

std::map<crypto::PublicKey, IdentitySummary> SqliteGatewayStore::identities() const {
    std::map<crypto::PublicKey, IdentitySummary> out;
    for (const auto& [key, state] : identities_)
        out[key] = IdentitySummary{state.id, state.pending, state.token_used_ms};
    for (const auto& [key, unsaved] : unsaved_tokens_) {
        auto& summary = out[key];
        summary.id = unsaved.id;
        summary.last_seen_ms = std::max(summary.last_seen_ms, unsaved.used_ms);
    }
    return out;
}

void SqliteGatewayStore::probe(Completion<void> done) {
    auto read = database_->query_int("SELECT count(*) FROM identities");
    if (!read) return done(read.take_error());
    done({});
}

void SqliteGatewayStore::open_session(const crypto::PublicKey& key, const std::string& id,
                                      const GatewayToken& presented, std::uint64_t now_ms,
                                      Completion<OpenedSession> done) {
    OpenedSession opened;
    opened.resumed = token_valid(key, presented, now_ms);
    if (opened.resumed) {
        opened.token = presented;
    } else {
        crypto::random_bytes(opened.token);
    }
    remember_token(key, id, opened.token, now_ms);
    const auto& state = identities_[key];
    opened.acknowledged = state.acknowledged;
    opened.patterns = state.patterns;
    done(std::move(opened));
}

void SqliteGatewayStore::session_closed(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                                        std::uint64_t now_ms) {
    remember_token(key, id, token, now_ms);
}

std::vector<Subscriber> SqliteGatewayStore::subscribers(std::string_view channel) const {
    std::vector<Subscriber> out;
    for (const auto& key : routes_.candidates(channel)) {
        const auto found = identities_.find(key);
        if (found == identities_.end()) continue;
        // The index gives a superset: only the patterns that really match go out.
        Subscriber subscriber{key, {}, {}};
        for (const auto& pattern : found->second.patterns)
            if (channel::matches(pattern, channel)) subscriber.patterns.push_back(pattern);
        if (subscriber.patterns.empty()) continue;
        subscriber.id = found->second.id;
        out.push_back(std::move(subscriber));
    }
    return out;
}

Result<void> SqliteGatewayStore::sync_in_background(Post post) {
    // The log exists once the file is open (it was written at open); a syncer of its own.
    auto syncer = LogSyncer::start(database_->path().string() + "-wal");
    if (!syncer) return syncer.take_error();
    syncer_ = std::move(*syncer);
    post_ = std::move(post);
    return {};
}

void SqliteGatewayStore::commit(StateCommit commit, Completion<CommitOutcome> done) {
    CommitOutcome outcome;
    const bool in_background = syncer_ && commit.survive_power_loss;
    if (in_background) database_->defer_log_sync();
    auto stored = store(commit, outcome);
    const bool sync_owed = in_background && database_->stop_deferring_log_sync();
    if (!stored) {
        // The mirror may hold what the transaction took back; the tokens stay remembered.
        auto error = stored.take_error();
        if (auto reloaded = reload(); !reloaded)
            error.message += fmt::format("; cannot re-read the state file: {}", reloaded.error().message);
        return done(std::move(error));
    }
    unsaved_tokens_.clear();
    if (!sync_owed) return done(std::move(outcome));
    // Answered once the log is on disk, on the caller's side (post_); the loop goes on meanwhile.
    const auto number = ++commits_;
    unsynced_.push_back(Unsynced{number, std::move(done), std::move(outcome)});
    syncer_->sync([post = post_, self = std::weak_ptr<SqliteGatewayStore*>(self_), number](Result<void> synced) {
        post([self, number, synced = std::move(synced)] {
            if (const auto store = self.lock()) (*store)->answer_synced(number, synced);
        });
    });
}

void SqliteGatewayStore::answer_synced(std::uint64_t through, const Result<void>& synced) {
    while (!unsynced_.empty() && unsynced_.front().number <= through) {
        auto waiting = std::move(unsynced_.front());
        unsynced_.pop_front();
        if (synced) {
            waiting.done(std::move(waiting.outcome));
        } else {
            waiting.done(synced.error());
        }
    }
}

void SqliteGatewayStore::close() {
    if (unsynced_.empty()) return;
    answer_synced(commits_, database_->sync_log());
}

Result<void> SqliteGatewayStore::store(const StateCommit& commit, CommitOutcome& outcome) {
    auto transaction = database_->begin(commit.survive_power_loss ? Durability::power_loss : Durability::process_crash);
    if (!transaction) return transaction.take_error();
    // The session tokens first: a new identity's row with them.
    if (auto saved = save_tokens(); !saved) return saved;
    for (const auto& [key, sequence] : commit.acknowledgements)
        if (auto acked = acknowledge(key, sequence); !acked) return acked;
    for (const auto& append : commit.appends) {
        for (const auto& key : append.recipients) {
            auto dropped = this->append(key, append.channel, append.batch, append.messages, commit.now_ms);
            if (!dropped) return dropped.take_error();
            if (*dropped > 0) outcome.dropped_full[identities_[key].id] += *dropped;
        }
    }
    return transaction->commit();
}

void SqliteGatewayStore::read_after(const crypto::PublicKey& key, std::uint64_t after, std::size_t limit,
                                    Completion<std::vector<StoredBatch>> done) {
    done(read(key, after, limit));
}

void SqliteGatewayStore::expire(std::uint64_t now_ms, Completion<std::map<std::string, std::uint64_t>> done) {
    done(expire_before(now_ms));
}

Result<void> SqliteGatewayStore::ensure_row(const crypto::PublicKey& key, const std::string& id) {
    auto upsert =
        database_->cached("INSERT INTO identities (key, id) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET id = ?2");
    if (!upsert) return upsert.take_error();
    (*upsert)->bind(1, view(key)).bind(2, std::string_view(id));
    if (auto done = (*upsert)->run(); !done) return done;
    identities_[key].id = id;
    return {};
}

void SqliteGatewayStore::save_subscriptions(const crypto::PublicKey& key, const std::string& id,
                                            const std::vector<std::string>& patterns, Completion<void> done) {
    if (auto row = ensure_row(key, id); !row) return done(std::move(row));
    auto update = database_->cached("UPDATE identities SET patterns = ?2 WHERE key = ?1");
    if (!update) return done(update.take_error());
    const auto joined = join_patterns(patterns);
    (*update)->bind(1, view(key)).bind(2, std::string_view(joined));
    if (auto ran = (*update)->run(); !ran) return done(std::move(ran));
    identities_[key].patterns = patterns;
    routes_.set(key, patterns);
    done(Result<void>{});
}

void SqliteGatewayStore::remember_token(const crypto::PublicKey& key, const std::string& id, const GatewayToken& token,
                                        std::uint64_t now_ms) {
    unsaved_tokens_[key] = UnsavedToken{id, token, now_ms};
    auto& state = identities_[key];
    state.id = id;
    state.token = token;
    state.token_used_ms = now_ms;
}

Result<void> SqliteGatewayStore::save_tokens() {
    if (unsaved_tokens_.empty()) return {};
    auto transaction = database_->begin(Durability::process_crash);
    if (!transaction) return transaction.take_error();
    auto update = database_->cached("UPDATE identities SET token = ?2, token_used_ms = ?3 WHERE key = ?1");
    if (!update) return update.take_error();
    for (const auto& [key, unsaved] : unsaved_tokens_) {
        if (auto row = ensure_row(key, unsaved.id); !row) return row;
        auto& statement = **update;
        statement.reset();
        statement.bind(1, view(key))
            .bind(2, ByteView(unsaved.token.data(), unsaved.token.size()))
            .bind(3, unsaved.used_ms);
        if (auto done = statement.run(); !done) return done;
    }
    return transaction->commit();
}

bool SqliteGatewayStore::token_valid(const crypto::PublicKey& key, const GatewayToken& token,
                                     std::uint64_t now_ms) const {
    const auto found = identities_.find(key);
    if (found == identities_.end() || token == GatewayToken{} || found->second.token != token) return false;
    return now_ms <= found->second.token_used_ms + limits_.max_age_ms;
}

Result<std::uint64_t> SqliteGatewayStore::append(const crypto::PublicKey& key, const std::string& channel,
                                                 ByteView batch, std::uint64_t messages, std::uint64_t now_ms) {
    const auto found = identities_.find(key);
    if (found == identities_.end()) return make_error(ExitCode::failure, "no inbox for this identity");
    const auto sequence = found->second.last_sequence + 1;
    auto insert = database_->cached(
        "INSERT INTO inbox (key, seq, channel, batch, messages, stored_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!insert) return insert.take_error();
    (*insert)
        ->bind(1, view(key))
        .bind(2, sequence)
        .bind(3, std::string_view(channel))
        .bind(4, batch)
        .bind(5, messages)
        .bind(6, now_ms);
    if (auto done = (*insert)->run(); !done) return done.take_error();
    auto bump = database_->cached("UPDATE identities SET last_seq = ?2 WHERE key = ?1");
    if (!bump) return bump.take_error();
    (*bump)->bind(1, view(key)).bind(2, sequence);
    if (auto done = (*bump)->run(); !done) return done.take_error();
    found->second.last_sequence = sequence;
    found->second.pending += messages;
    remember_recent(key, StoredBatch{sequence, channel, Bytes(batch.begin(), batch.end()), messages, now_ms});
    return trim(key);
}

Result<std::uint64_t> SqliteGatewayStore::trim(const crypto::PublicKey& key) {
    auto& state = identities_[key];
    std::uint64_t dropped = 0;
    while (state.pending > limits_.max_messages) {
        auto oldest = database_->cached("SELECT seq, messages FROM inbox WHERE key = ?1 ORDER BY seq LIMIT 1");
        if (!oldest) return oldest.take_error();
        (*oldest)->bind(1, view(key));
        auto row = (*oldest)->step();
        if (!row) return row.take_error();
        if (!*row) break;
        const auto sequence = (*oldest)->column_uint(0);
        const auto messages = (*oldest)->column_uint(1);
        auto erase = database_->cached("DELETE FROM inbox WHERE key = ?1 AND seq = ?2");
        if (!erase) return erase.take_error();
        (*erase)->bind(1, view(key)).bind(2, sequence);
        if (auto done = (*erase)->run(); !done) return done.take_error();
        forget_recent(key, sequence);
        state.pending -= std::min(state.pending, messages);
        dropped += messages;
    }
    return dropped;
}

Result<void> SqliteGatewayStore::acknowledge(const crypto::PublicKey& key, std::uint64_t sequence) {
    const auto found = identities_.find(key);
    if (found == identities_.end() || sequence <= found->second.acknowledged) return {};
    sequence = std::min(sequence, found->second.last_sequence);  // never acknowledge what was not handed out
    auto removed = database_->cached("SELECT coalesce(sum(messages), 0) FROM inbox WHERE key = ?1 AND seq <= ?2");
    if (!removed) return removed.take_error();
    (*removed)->bind(1, view(key)).bind(2, sequence);
    auto row = (*removed)->step();
    if (!row) return row.take_error();
    const auto messages = *row ? (*removed)->column_uint(0) : 0;
    auto erase = database_->cached("DELETE FROM inbox WHERE key = ?1 AND seq <= ?2");
    if (!erase) return erase.take_error();
    (*erase)->bind(1, view(key)).bind(2, sequence);
    if (auto done = (*erase)->run(); !done) return done;
    auto update = database_->cached("UPDATE identities SET acked = ?2 WHERE key = ?1");
    if (!update) return update.take_error();
    (*update)->bind(1, view(key)).bind(2, sequence);
    if (auto done = (*update)->run(); !done) return done;
    found->second.acknowledged = sequence;
    found->second.pending -= std::min(found->second.pending, messages);
    forget_recent(key, sequence);
    return {};
}

Result<std::vector<StoredBatch>> SqliteGatewayStore::read(const crypto::PublicKey& key, std::uint64_t after,
                                                          std::size_t limit) const {
    std::vector<StoredBatch> out;
    if (const auto state = identities_.find(key); state != identities_.end() && state->second.last_sequence <= after)
        return out;
    if (const auto recent = recent_.find(key); recent != recent_.end()) {
        const auto& batches = recent->second;
        // Served from memory only when it holds everything after AFTER (the back is the newest).
        if (!batches.empty() && batches.front().sequence <= after + 1 && batches.back().sequence > after) {
            for (const auto& batch : batches) {
                if (out.size() >= limit) break;
                if (batch.sequence > after) out.push_back(batch);
            }
            return out;
        }
    }
    auto rows = database_->cached(
        "SELECT seq, channel, batch, messages, stored_ms FROM inbox WHERE key = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    if (!rows) return rows.take_error();
    (*rows)->bind(1, view(key)).bind(2, after).bind(3, static_cast<std::uint64_t>(limit));
    for (;;) {
        auto more = (*rows)->step();
        if (!more) return more.take_error();
        if (!*more) break;
        out.push_back(StoredBatch{(*rows)->column_uint(0), (*rows)->column_text(1), (*rows)->column_blob(2),
                                  (*rows)->column_uint(3), (*rows)->column_uint(4)});
    }
    return out;
}

void SqliteGatewayStore::remember_recent(const crypto::PublicKey& key, StoredBatch batch) {
    // Kept only right after what is kept already and within the bounds; an inbox that falls out
    // is served from the file until what it kept is acknowledged.
    constexpr auto kAll = std::numeric_limits<std::uint64_t>::max();
    if (const auto recent = recent_.find(key);
        recent != recent_.end() && recent->second.back().sequence + 1 != batch.sequence)
        forget_recent(key, kAll);
    if (recent_bytes_ + batch.batch.size() > kRecentBytes) {
        forget_recent(key, kAll);
        return;
    }
    auto& kept = recent_[key];
    recent_bytes_ += batch.batch.size();
    kept.push_back(std::move(batch));
    if (kept.size() > kRecentPerInbox) forget_recent(key, kept.front().sequence);
}

void SqliteGatewayStore::forget_recent(const crypto::PublicKey& key, std::uint64_t through_sequence) {
    const auto recent = recent_.find(key);
    if (recent == recent_.end()) return;
    auto& batches = recent->second;
    while (!batches.empty() && batches.front().sequence <= through_sequence) {
        recent_bytes_ -= batches.front().batch.size();
        batches.pop_front();
    }
    if (batches.empty()) recent_.erase(recent);
}

void SqliteGatewayStore::forget_all_recent() {
    recent_.clear();
    recent_bytes_ = 0;
}

Result<std::map<std::string, std::uint64_t>> SqliteGatewayStore::expire_before(std::uint64_t now_ms) {
    std::map<std::string, std::uint64_t> dropped;
    if (now_ms <= limits_.max_age_ms) return dropped;
    const auto cutoff = now_ms - limits_.max_age_ms;
    std::vector<std::pair<crypto::PublicKey, std::uint64_t>> per_key;
    {
        auto old = database_->cached("SELECT key, sum(messages) FROM inbox WHERE stored_ms < ?1 GROUP BY key");
        if (!old) return old.take_error();
        (*old)->bind(1, cutoff);
        for (;;) {
            auto more = (*old)->step();
            if (!more) return more.take_error();
            if (!*more) break;
            per_key.emplace_back(key_from((*old)->column_blob_view(0)), (*old)->column_uint(1));
        }
    }
    if (per_key.empty()) return dropped;
    auto erase = database_->cached("DELETE FROM inbox WHERE stored_ms < ?1");
    if (!erase) return erase.take_error();
    (*erase)->bind(1, cutoff);
    if (auto done = (*erase)->run(); !done) return done.take_error();
    forget_all_recent();
    for (const auto& [key, messages] : per_key) {
        auto& state = identities_[key];
        state.pending -= std::min(state.pending, messages);
        dropped[state.id] += messages;
    }
    return dropped;
}

}  // namespace aegis::store
