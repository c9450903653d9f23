// aegis_queue_bench: the broker's outbound queue designs measured side by side on the same
// messages, so that the redesign is chosen by figures (scripts/bench-queue.sh runs the matrix).
//
//   aegis_queue_bench --design rows|batches|lmdb|store --dir DIR [--messages N] [--batch B]
//                     [--size BYTES] [--sync full|normal]
//
// Pushes N messages of BYTES payload in commits of B (group commit), then drains them as the
// broker does: reads the oldest B back and removes them once "acknowledged", one commit per B.
// Prints one JSON object: push and drain messages/s, bytes on disk per queued message (every
// file in DIR once all N are queued), and the peak resident memory (VmHWM).
//
// Designs:
//   rows     today's queue: one SQLite row per message, lib/store/state_database.cpp's schema and
//            partial indexes, INSERT ... ON CONFLICT (id) DO NOTHING, DELETE ... WHERE seq BETWEEN
//            (lib/store/outbound_store.cpp), WAL. SQLite's own checkpoint at 1000 frames, on the
//            committing thread (the broker runs the same one on a thread of its own).
//   batches  one SQLite row per published batch, its messages back to back inside it (each
//            addressed by its index in the batch), WAL, the same pragmas.
//   lmdb     LMDB, one record per message under an increasing 64-bit key (MDB_APPEND).
//   store    the broker's queue class itself (store::SqliteOutboundQueue, one row per publish and
//            an index in memory): push_many of B messages, then take_batch(B) and acknowledge,
//            as the broker's outbound flow calls them. Its sync is chosen by the messages it is
//            given: events are committed with synchronous=FULL; for --sync normal the messages
//            are requests, which the queue commits without an fsync (protocol::short_lived).
// --sync full: every push commit reaches the disk (SQLite synchronous=FULL, LMDB's default sync),
//   which is what the queue does today for events; normal: survives the process being killed but
//   not power loss (synchronous=NORMAL in WAL, MDB_NOSYNC). Removals always use normal, as today.

#include <fcntl.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "store/outbound_store.h"

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<unsigned char>;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "aegis_queue_bench: error: %s\n", what.c_str());
    std::exit(1);
}

struct Options {
    std::string design;
    std::filesystem::path dir;
    std::size_t messages = 200000;
    std::size_t batch = 64;
    std::size_t size = 100;
    bool full_sync = true;
};

// One queued message with the fields the queue keeps today.
struct Message {
    unsigned char id[16];
    unsigned char correlation[16];
    int priority = 2;
    int kind = 0;
    std::uint64_t timestamp_ms = 0;
    std::uint64_t expires_ms = 0;
    std::string channel = "agent.host42.bench";
    Bytes headers{0, 0};  // an empty header list, as encode_headers writes it
    Bytes payload;
};

// Message i, made again whenever it is needed: the input is not held in memory, so the peak
// resident memory is the store's.
class Messages {
public:
    explicit Messages(const Options& options)
        : count_(options.messages),
          now_ms_(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count())) {
        message_.payload.resize(options.size);
        std::memset(message_.correlation, 0, sizeof message_.correlation);
    }
    [[nodiscard]] std::size_t size() const { return count_; }
    const Message& operator[](std::size_t i) {
        std::uint64_t state = i * 0x9e3779b97f4a7c15ULL + 1;
        for (std::size_t j = 0; j < sizeof message_.id; j += 8) {
            state ^= state >> 31;
            state *= 0xbf58476d1ce4e5b9ULL;
            state ^= state >> 29;
            for (std::size_t k = 0; k < 8; ++k) message_.id[j + k] = static_cast<unsigned char>(state >> (8 * k));
        }
        message_.timestamp_ms = now_ms_ + i / 1000;
        for (std::size_t j = 0; j < message_.payload.size(); ++j)
            message_.payload[j] = static_cast<unsigned char>('0' + (i + j) % 10);
        return message_;
    }

private:
    std::size_t count_;
    std::uint64_t now_ms_;
    Message message_;
};

void put_u64(Bytes& out, std::uint64_t value) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(value >> shift));
}

void put_u32(Bytes& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(value >> shift));
}

// The fields of one message back to back (what a batch row or an LMDB record holds).
void encode(const Message& message, Bytes& out) {
    out.insert(out.end(), std::begin(message.id), std::end(message.id));
    out.insert(out.end(), std::begin(message.correlation), std::end(message.correlation));
    out.push_back(static_cast<unsigned char>(message.priority));
    out.push_back(static_cast<unsigned char>(message.kind));
    put_u64(out, message.timestamp_ms);
    put_u64(out, message.expires_ms);
    out.push_back(static_cast<unsigned char>(message.channel.size()));
    out.insert(out.end(), message.channel.begin(), message.channel.end());
    put_u32(out, static_cast<std::uint32_t>(message.headers.size()));
    out.insert(out.end(), message.headers.begin(), message.headers.end());
    put_u32(out, static_cast<std::uint32_t>(message.payload.size()));
    out.insert(out.end(), message.payload.begin(), message.payload.end());
}

// What a reader of a record does: walk to the payload. Returns the payload's length and sets
// `length` to the whole record's.
std::size_t decode_payload_bytes(const unsigned char* data, std::size_t size, std::size_t& length) {
    std::size_t at = 16 + 16 + 2 + 16;
    if (at >= size) die("a record is truncated");
    at += 1 + data[at];
    const auto u32 = [&](std::size_t offset) {
        return (std::uint32_t{data[offset]} << 24) | (std::uint32_t{data[offset + 1]} << 16) |
               (std::uint32_t{data[offset + 2]} << 8) | std::uint32_t{data[offset + 3]};
    };
    at += 4 + u32(at);
    const auto payload = u32(at);
    if (at + 4 + payload > size) die("a record is truncated");
    length = at + 4 + payload;
    return payload;
}

// ---- SQLite ----

class Sqlite {
public:
    explicit Sqlite(const std::filesystem::path& file) {
        if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK)
            die("cannot open " + file.string());
    }
    ~Sqlite() {
        for (auto* statement : statements_) sqlite3_finalize(statement);
        sqlite3_close(db_);
    }
    Sqlite(const Sqlite&) = delete;
    Sqlite& operator=(const Sqlite&) = delete;

    void exec(const char* sql) {
        char* message = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
            std::string text = message != nullptr ? message : "?";
            sqlite3_free(message);
            die(std::string(sql) + ": " + text);
        }
    }
    sqlite3_stmt* prepare(const char* sql) {
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) != SQLITE_OK)
            die(std::string(sql) + ": " + sqlite3_errmsg(db_));
        statements_.push_back(statement);
        return statement;
    }
    void step_done(sqlite3_stmt* statement) {
        if (sqlite3_step(statement) != SQLITE_DONE) die(sqlite3_errmsg(db_));
        sqlite3_reset(statement);
    }
    // BEGIN IMMEDIATE with the synchronous mode set outside the transaction, as Database::begin.
    void begin(bool full) {
        if (full != full_) exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        full_ = full;
        exec("BEGIN IMMEDIATE");
    }
    void commit() { exec("COMMIT"); }

private:
    sqlite3* db_ = nullptr;
    std::vector<sqlite3_stmt*> statements_;
    bool full_ = true;
};

// lib/store/state_database.cpp's messages table and its indexes, and Database's pragmas.
constexpr const char* kRowsSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    priority INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    correlation BLOB NOT NULL,
    headers BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'in_flight', 'dead')),
    dead_reason TEXT,
    dead_at_ms INTEGER
);
CREATE INDEX messages_waiting ON messages (priority, seq) WHERE state = 'waiting';
CREATE INDEX messages_dead ON messages (dead_at_ms, seq) WHERE state = 'dead';
)sql";

// One row per published batch: the shared fields once, the messages inside `body`.
constexpr const char* kBatchesSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    count INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
CREATE INDEX batches_by_priority ON batches (priority, seq);
)sql";

struct Timings {
    double push_s = 0;
    double drain_s = 0;
    std::uint64_t disk_bytes = 0;
};

std::uint64_t disk_bytes(const std::filesystem::path& dir) {
    std::uint64_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.is_regular_file()) total += entry.file_size();
    return total;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

Timings run_rows(const Options& options, Messages& messages) {
    Sqlite db(options.dir / "queue.db");
    db.exec(kRowsSchema);
    auto* insert = db.prepare(
        "INSERT INTO messages (id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING");
    auto* take = db.prepare(
        "SELECT id, channel, priority, kind, correlation, headers, timestamp_ms, expires_ms, payload, attempts, "
        "next_attempt_ms, state, dead_reason, dead_at_ms, length(payload), seq FROM messages "
        "WHERE state = 'waiting' AND priority = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    auto* erase = db.prepare("DELETE FROM messages WHERE seq BETWEEN ?1 AND ?2");
    Timings timings;
    auto start = Clock::now();
    for (std::size_t first = 0; first < messages.size(); first += options.batch) {
        db.begin(options.full_sync);
        const auto end = std::min(messages.size(), first + options.batch);
        for (std::size_t i = first; i < end; ++i) {
            const auto& message = messages[i];
            sqlite3_bind_blob(insert, 1, message.id, sizeof message.id, SQLITE_STATIC);
            sqlite3_bind_text(insert, 2, message.channel.data(), static_cast<int>(message.channel.size()),
                              SQLITE_STATIC);
            sqlite3_bind_int(insert, 3, message.priority);
            sqlite3_bind_int(insert, 4, message.kind);
            sqlite3_bind_blob(insert, 5, message.correlation, sizeof message.correlation, SQLITE_STATIC);
            sqlite3_bind_blob(insert, 6, message.headers.data(), static_cast<int>(message.headers.size()),
                              SQLITE_STATIC);
            sqlite3_bind_int64(insert, 7, static_cast<sqlite3_int64>(message.timestamp_ms));
            sqlite3_bind_int64(insert, 8, static_cast<sqlite3_int64>(message.expires_ms));
            sqlite3_bind_blob(insert, 9, message.payload.data(), static_cast<int>(message.payload.size()),
                              SQLITE_STATIC);
            db.step_done(insert);
        }
        db.commit();
    }
    timings.push_s = seconds_since(start);
    timings.disk_bytes = disk_bytes(options.dir);

    // Drain: take the oldest waiting ones (payloads read), then delete them once acknowledged.
    start = Clock::now();
    sqlite3_int64 cursor = 0;
    std::size_t drained = 0, payload_bytes = 0;
    while (drained < messages.size()) {
        sqlite3_bind_int(take, 1, 2);
        sqlite3_bind_int64(take, 2, cursor);
        sqlite3_bind_int64(take, 3, static_cast<sqlite3_int64>(options.batch));
        sqlite3_int64 first = -1, last = -1;
        while (sqlite3_step(take) == SQLITE_ROW) {
            payload_bytes += static_cast<std::size_t>(sqlite3_column_bytes(take, 8));
            last = sqlite3_column_int64(take, 15);
            if (first < 0) first = last;
        }
        sqlite3_reset(take);
        if (first < 0) die("the queue ran dry early");
        cursor = last;
        db.begin(false);
        sqlite3_bind_int64(erase, 1, first);
        sqlite3_bind_int64(erase, 2, last);
        db.step_done(erase);
        db.commit();
        drained += static_cast<std::size_t>(last - first + 1);
    }
    timings.drain_s = seconds_since(start);
    if (payload_bytes != messages.size() * options.size) die("rows: payloads lost");
    return timings;
}

Timings run_batches(const Options& options, Messages& messages) {
    Sqlite db(options.dir / "queue.db");
    db.exec(kBatchesSchema);
    auto* insert = db.prepare("INSERT INTO batches (priority, count, expires_ms, body) VALUES (?1, ?2, ?3, ?4)");
    auto* take =
        db.prepare("SELECT seq, count, body FROM batches WHERE priority = ?1 AND seq > ?2 ORDER BY seq LIMIT 1");
    auto* erase = db.prepare("DELETE FROM batches WHERE seq = ?1");
    Timings timings;
    Bytes body;
    auto start = Clock::now();
    for (std::size_t first = 0; first < messages.size(); first += options.batch) {
        const auto end = std::min(messages.size(), first + options.batch);
        body.clear();
        for (std::size_t i = first; i < end; ++i) encode(messages[i], body);
        db.begin(options.full_sync);
        sqlite3_bind_int(insert, 1, 2);
        sqlite3_bind_int64(insert, 2, static_cast<sqlite3_int64>(end - first));
        sqlite3_bind_int64(insert, 3, 0);
        sqlite3_bind_blob(insert, 4, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
        db.step_done(insert);
        db.commit();
    }
    timings.push_s = seconds_since(start);
    timings.disk_bytes = disk_bytes(options.dir);

    start = Clock::now();
    sqlite3_int64 cursor = 0;
    std::size_t drained = 0, payload_bytes = 0;
    while (drained < messages.size()) {
        sqlite3_bind_int(take, 1, 2);
        sqlite3_bind_int64(take, 2, cursor);
        if (sqlite3_step(take) != SQLITE_ROW) die("the queue ran dry early");
        cursor = sqlite3_column_int64(take, 0);
        const auto count = static_cast<std::size_t>(sqlite3_column_int64(take, 1));
        const auto* data = static_cast<const unsigned char*>(sqlite3_column_blob(take, 2));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(take, 2));
        // Walk the messages inside: each one's length is known from its fields.
        std::size_t at = 0;
        for (std::size_t i = 0; i < count; ++i) {
            std::size_t length = 0;
            payload_bytes += decode_payload_bytes(data + at, size - at, length);
            at += length;
        }
        sqlite3_reset(take);
        db.begin(false);
        sqlite3_bind_int64(erase, 1, cursor);
        db.step_done(erase);
        db.commit();
        drained += count;
    }
    timings.drain_s = seconds_since(start);
    if (payload_bytes != messages.size() * options.size) die("batches: payloads lost");
    return timings;
}

void check_lmdb(int code, const char* what) {
    if (code != MDB_SUCCESS) die(std::string(what) + ": " + mdb_strerror(code));
}

Timings run_lmdb(const Options& options, Messages& messages) {
    MDB_env* env = nullptr;
    check_lmdb(mdb_env_create(&env), "mdb_env_create");
    check_lmdb(mdb_env_set_mapsize(env, std::size_t{16} << 30), "mdb_env_set_mapsize");
    check_lmdb(mdb_env_open(env, options.dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open");
    MDB_dbi dbi = 0;
    {
        MDB_txn* txn = nullptr;
        check_lmdb(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
        check_lmdb(mdb_dbi_open(txn, nullptr, 0, &dbi), "mdb_dbi_open");
        check_lmdb(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    const auto set_sync = [&](bool full) { check_lmdb(mdb_env_set_flags(env, MDB_NOSYNC, full ? 0 : 1), "sync"); };
    Timings timings;
    Bytes record;
    unsigned char key_bytes[8];
    const auto set_key = [&](std::uint64_t seq) {
        for (int i = 0; i < 8; ++i) key_bytes[i] = static_cast<unsigned char>(seq >> (56 - 8 * i));
    };
    set_sync(options.full_sync);
    auto start = Clock::now();
    std::uint64_t seq = 0;
    for (std::size_t first = 0; first < messages.size(); first += options.batch) {
        const auto end = std::min(messages.size(), first + options.batch);
        MDB_txn* txn = nullptr;
        check_lmdb(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
        for (std::size_t i = first; i < end; ++i) {
            record.clear();
            encode(messages[i], record);
            set_key(++seq);
            MDB_val key{sizeof key_bytes, key_bytes};
            MDB_val value{record.size(), record.data()};
            check_lmdb(mdb_put(txn, dbi, &key, &value, MDB_APPEND), "mdb_put");
        }
        check_lmdb(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    timings.push_s = seconds_since(start);
    timings.disk_bytes = disk_bytes(options.dir);

    set_sync(false);
    start = Clock::now();
    std::size_t drained = 0, payload_bytes = 0;
    while (drained < messages.size()) {
        MDB_txn* txn = nullptr;
        check_lmdb(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
        MDB_cursor* cursor = nullptr;
        check_lmdb(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open");
        MDB_val key, value;
        // Read the oldest B (the batch sent), then delete them (its acknowledgement).
        int code = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
        for (std::size_t i = 0; i < options.batch && code == MDB_SUCCESS; ++i) {
            std::size_t length = 0;
            payload_bytes +=
                decode_payload_bytes(static_cast<const unsigned char*>(value.mv_data), value.mv_size, length);
            check_lmdb(mdb_cursor_del(cursor, 0), "mdb_cursor_del");
            ++drained;
            code = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
        }
        mdb_cursor_close(cursor);
        check_lmdb(mdb_txn_commit(txn), "mdb_txn_commit");
        if (code != MDB_SUCCESS && drained < messages.size()) die("the queue ran dry early");
    }
    timings.drain_s = seconds_since(start);
    mdb_env_close(env);
    if (payload_bytes != messages.size() * options.size) die("lmdb: payloads lost");
    return timings;
}

Timings run_store(const Options& options, Messages& messages) {
    auto opened = aegis::store::SqliteOutboundQueue::open(options.dir / "queue.db",
                                                          aegis::store::QueueLimits{messages.size(), ~0ull, 1});
    if (!opened) die(opened.error().message);
    auto& queue = **opened;
    Timings timings;
    std::vector<aegis::store::OutboundMessage> group;
    auto start = Clock::now();
    for (std::size_t first = 0; first < messages.size(); first += options.batch) {
        const auto end = std::min(messages.size(), first + options.batch);
        group.clear();
        for (std::size_t i = first; i < end; ++i) {
            const auto& message = messages[i];
            aegis::store::OutboundMessage out;
            std::copy(std::begin(message.id), std::end(message.id), out.id.begin());
            out.channel = message.channel;
            out.priority = static_cast<aegis::protocol::Priority>(message.priority);
            out.kind = options.full_sync ? aegis::protocol::Kind::event : aegis::protocol::Kind::request;
            out.timestamp_ms = message.timestamp_ms;
            out.payload = message.payload;
            group.push_back(std::move(out));
        }
        if (auto pushed = queue.push_many(group); !pushed) die(pushed.error().message);
    }
    timings.push_s = seconds_since(start);
    timings.disk_bytes = disk_bytes(options.dir);

    start = Clock::now();
    std::size_t drained = 0, payload_bytes = 0;
    std::vector<aegis::store::OutboundMessage> expired;
    std::vector<aegis::protocol::MessageId> ids;
    while (drained < messages.size()) {
        auto batch = queue.take_batch(aegis::store::BatchLimits{options.batch, std::size_t{1} << 30}, 0, expired);
        if (!batch) die(batch.error().message);
        if (batch->empty()) die("the queue ran dry early");
        ids.clear();
        for (const auto& message : *batch) {
            payload_bytes += message.payload.size();
            ids.push_back(message.id);
        }
        if (auto acknowledged = queue.acknowledge(ids); !acknowledged) die(acknowledged.error().message);
        drained += batch->size();
    }
    timings.drain_s = seconds_since(start);
    if (payload_bytes != messages.size() * options.size) die("store: payloads lost");
    return timings;
}

long peak_rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

std::size_t count_arg(const char* text, const char* name) {
    char* end = nullptr;
    const auto value = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0' || value == 0) die(std::string(name) + " must be a positive integer");
    return static_cast<std::size_t>(value);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) die("missing value after " + arg);
        const char* value = argv[++i];
        if (arg == "--design") {
            options.design = value;
        } else if (arg == "--dir") {
            options.dir = value;
        } else if (arg == "--messages") {
            options.messages = count_arg(value, "--messages");
        } else if (arg == "--batch") {
            options.batch = count_arg(value, "--batch");
        } else if (arg == "--size") {
            options.size = count_arg(value, "--size");
        } else if (arg == "--sync") {
            if (std::string(value) != "full" && std::string(value) != "normal") die("--sync takes full or normal");
            options.full_sync = std::string(value) == "full";
        } else {
            die("unknown argument " + arg);
        }
    }
    if (options.dir.empty()) die("--dir is needed");
    std::filesystem::create_directories(options.dir);
    if (!std::filesystem::is_empty(options.dir)) die(options.dir.string() + " is not empty");
    Messages messages(options);
    Timings timings;
    if (options.design == "rows") {
        timings = run_rows(options, messages);
    } else if (options.design == "batches") {
        timings = run_batches(options, messages);
    } else if (options.design == "lmdb") {
        timings = run_lmdb(options, messages);
    } else if (options.design == "store") {
        timings = run_store(options, messages);
    } else {
        die("--design takes rows, batches, lmdb or store");
    }
    const auto n = static_cast<double>(options.messages);
    std::printf(
        "{\"design\": \"%s\", \"sync\": \"%s\", \"batch\": %zu, \"messages\": %zu, \"size\": %zu, "
        "\"push_per_s\": %.0f, \"drain_per_s\": %.0f, \"disk_bytes_per_message\": %.1f, \"peak_rss_kib\": %ld}\n",
        options.design.c_str(), options.full_sync ? "full" : "normal", options.batch, options.messages, options.size,
        n / timings.push_s, n / timings.drain_s, static_cast<double>(timings.disk_bytes) / n, peak_rss_kib());
    return 0;
}
