// The durable store: the SQLite wrapper, the outbound queue, the delivered-id window and the
// durable inboxes, on real files in a temporary directory. Crashes are real: a child process
// is killed with SIGKILL or runs out of file size, and the parent reopens what it left.

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "child_process.h"
#include "store/dedup_store.h"
#include "store/durable_inbox.h"
#include "store/outbound_store.h"
#include "store/sqlite.h"
#include "store/state_database.h"

namespace store = aegis::store;
using aegis::Bytes;
using aegis::ExitCode;
using aegis::protocol::Kind;
using aegis::protocol::MessageId;
using aegis::protocol::Priority;
using aegis::test::run_in_child;
using aegis::test::write_text;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-store-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, ignored);
        std::filesystem::remove_all(path, ignored);
    }
    [[nodiscard]] std::filesystem::path file(const char* name = "queue.db") const { return path / name; }
};

[[nodiscard]] MessageId id_of(std::uint32_t n) {
    MessageId id{};
    for (int i = 0; i < 4; ++i) id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
    id[15] = 0xa5;
    return id;
}

[[nodiscard]] std::uint32_t number_of(const MessageId& id) {
    return (std::uint32_t{id[0]} << 24) | (std::uint32_t{id[1]} << 16) | (std::uint32_t{id[2]} << 8) | id[3];
}

[[nodiscard]] store::OutboundMessage message(std::uint32_t n, std::string channel = "agent.a1.logs",
                                             Priority priority = Priority::normal, std::size_t payload = 10,
                                             std::uint64_t expires_ms = 0) {
    store::OutboundMessage out;
    out.id = id_of(n);
    out.channel = std::move(channel);
    out.priority = priority;
    out.payload.assign(payload, static_cast<std::uint8_t>(n));
    out.timestamp_ms = 1'000 + n;
    out.expires_ms = expires_ms;
    return out;
}

[[nodiscard]] std::vector<std::uint32_t> numbers(const std::vector<store::OutboundMessage>& messages) {
    std::vector<std::uint32_t> out;
    for (const auto& m : messages) out.push_back(number_of(m.id));
    return out;
}

[[nodiscard]] std::vector<std::uint32_t> numbers(const std::vector<store::QueueEntry>& entries) {
    std::vector<std::uint32_t> out;
    for (const auto& e : entries) out.push_back(number_of(e.id));
    return out;
}

[[nodiscard]] std::unique_ptr<store::SqliteOutboundQueue> open_queue(const std::filesystem::path& file,
                                                                     store::QueueLimits limits = {},
                                                                     store::QueueOptions options = {}) {
    auto queue = store::SqliteOutboundQueue::open(file, limits, std::move(options));
    INFO((queue ? std::string() : queue.error().message));
    REQUIRE(queue);
    return std::move(*queue);
}

// Jitter pinned to its upper bound, so backoff delays are exact.
[[nodiscard]] store::QueueOptions fixed_backoff(std::uint64_t base_ms, std::uint64_t max_ms,
                                                std::uint32_t max_attempts = 0) {
    store::QueueOptions options;
    options.backoff = {base_ms, max_ms, max_attempts};
    options.jitter = [](std::uint64_t cap) { return cap; };
    return options;
}

// A batch taken at `now`, which must not fail.
[[nodiscard]] std::vector<store::OutboundMessage> take(store::SqliteOutboundQueue& queue,
                                                       const store::BatchLimits& limits, std::uint64_t now,
                                                       std::vector<store::OutboundMessage>& expired) {
    auto batch = queue.take_batch(limits, now, expired);
    INFO((batch ? std::string() : batch.error().message));
    REQUIRE(batch);
    return std::move(*batch);
}

const store::BatchLimits kOneAtATime{1, 1 << 20};
const store::BatchLimits kLargeBatches{1000, 1 << 20};

[[nodiscard]] std::vector<std::uint32_t> drain_one_by_one(store::SqliteOutboundQueue& queue, std::uint64_t now) {
    std::vector<std::uint32_t> order;
    std::vector<store::OutboundMessage> expired;
    for (;;) {
        auto batch = take(queue, kOneAtATime, now, expired);
        if (batch.empty()) return order;
        order.push_back(number_of(batch.front().id));
    }
}

[[nodiscard]] Bytes file_bytes(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The SQLite wrapper

TEST_CASE("store: the SQLite wrapper binds, steps, reads columns and rolls back unfinished transactions", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("plain.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE t (n INTEGER, s TEXT, b BLOB)"));
    {
        auto insert = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)");
        REQUIRE(insert);
        const Bytes blob{0, 1, 2, 0, 255};
        insert->bind(1, std::int64_t{-5}).bind(2, std::string_view("text")).bind(3, aegis::ByteView(blob));
        REQUIRE(insert->run());
        insert->reset();
        insert->bind(1, std::uint64_t{7}).bind(2, std::string_view("")).bind(3, aegis::ByteView());
        REQUIRE(insert->run());
    }
    {
        auto transaction = db.begin();
        REQUIRE(transaction);
        REQUIRE(db.exec("INSERT INTO t VALUES (99, 'lost', NULL)"));
    }  // not committed: rolled back
    auto count = db.query_int("SELECT count(*) FROM t");
    REQUIRE(count);
    CHECK(*count == 2);

    auto select = db.prepare("SELECT n, s, b FROM t ORDER BY rowid");
    REQUIRE(select);
    auto row = select->step();
    REQUIRE(row);
    REQUIRE(*row);
    CHECK(select->column_int(0) == -5);
    CHECK(select->column_text(1) == "text");
    CHECK(select->column_blob(2) == Bytes{0, 1, 2, 0, 255});
    row = select->step();
    REQUIRE((row && *row));
    CHECK(select->column_uint(0) == 7);
    CHECK(select->column_blob(2).empty());
    CHECK_FALSE(select->column_is_null(2));  // an empty blob is stored as an empty blob, not NULL
    row = select->step();
    REQUIRE(row);
    CHECK_FALSE(*row);

    auto bad = db.prepare("SELECT nonsense FROM nowhere");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("no such table") != std::string::npos);
}

TEST_CASE("store: SQLite keeps no memory statistics (a global mutex at every allocation)", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("plain.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    REQUIRE((*opened)->exec("CREATE TABLE t (b BLOB)"));
    REQUIRE((*opened)->exec("INSERT INTO t VALUES (randomblob(100000))"));
    // The connection holds a page cache and a schema, yet nothing was counted.
    CHECK(sqlite3_memory_used() == 0);
}

TEST_CASE("store: a transaction begun inside another joins it, and an unfinished part fails the whole", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("nested.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("PRAGMA journal_mode = WAL"));
    REQUIRE(db.exec("CREATE TABLE t (n INTEGER)"));
    const auto rows = [&] {
        auto count = db.query_int("SELECT count(*) FROM t");
        REQUIRE(count);
        return *count;
    };
    {
        auto outer = db.begin(store::Durability::process_crash);
        REQUIRE(outer);
        {
            auto inner = db.begin(store::Durability::power_loss);  // joins; a checkpoint follows the commit
            REQUIRE(inner);
            REQUIRE(db.exec("INSERT INTO t VALUES (1)"));
            REQUIRE(inner->commit());
        }
        REQUIRE(db.exec("INSERT INTO t VALUES (2)"));
        REQUIRE(outer->commit());
    }
    CHECK(rows() == 2);
    {
        auto outer = db.begin();
        REQUIRE(outer);
        REQUIRE(db.exec("INSERT INTO t VALUES (3)"));
        {
            auto inner = db.begin(store::Durability::process_crash);
            REQUIRE(inner);
            REQUIRE(db.exec("INSERT INTO t VALUES (4)"));
        }  // not committed: the outer commit must roll everything back
        auto committed = outer->commit();
        REQUIRE_FALSE(committed);
        CHECK(committed.error().message.find("nothing was written") != std::string::npos);
    }
    CHECK(rows() == 2);
    auto after = db.begin();  // the connection is usable again
    REQUIRE(after);
    REQUIRE(db.exec("INSERT INTO t VALUES (5)"));
    REQUIRE(after->commit());
    CHECK(rows() == 3);
}

TEST_CASE("store: a state file's log is checkpointed by a thread of its own, and then reused", "[store]") {
    TempDir dir;
    const auto file = dir.file("state.db");
    auto opened = store::open_state_database(file);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE filler (b BLOB)"));
    const Bytes row(4000, 0x5a);  // a page of its own: every commit adds frames to the log
    auto fill = [&](int commits) {
        for (int i = 0; i < commits; ++i) {
            auto transaction = db.begin(store::Durability::process_crash);
            REQUIRE(transaction);
            auto insert = db.cached("INSERT INTO filler VALUES (?1)");
            REQUIRE(insert);
            (*insert)->bind(1, aegis::ByteView(row));
            REQUIRE((*insert)->run());
            REQUIRE(transaction->commit());
        }
    };
    // Waits for the condition itself, with a generous bound: a passive checkpoint under load may
    // copy part of the log, and the one after the last commit may start late on a busy machine.
    auto eventually = [](const std::function<bool()>& condition) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (!condition()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    };
    // The log is copied whole when the wal-index (the -shm file, SQLite's walformat: header at 0,
    // mxFrame at byte 16; checkpoint info at 96, nBackfill first; native byte order) says that
    // every frame in it has been backfilled. Reading it checkpoints nothing.
    auto copied = [&] {
        std::ifstream shm(file.string() + "-shm", std::ios::binary);
        std::uint32_t max_frame = 0, backfilled = 0;
        shm.seekg(16);
        shm.read(reinterpret_cast<char*>(&max_frame), sizeof max_frame);
        shm.seekg(96);
        shm.read(reinterpret_cast<char*>(&backfilled), sizeof backfilled);
        return shm.good() && max_frame > 0 && backfilled == max_frame;
    };
    const auto wal = std::filesystem::path(file.string() + "-wal");
    const int commits = store::Database::kBackgroundCheckpointFrames;  // at least as many frames
    fill(commits);
    REQUIRE(eventually([&] { return db.background_checkpoints() > 0 && copied(); }));
    const int first = db.background_checkpoints();
    const auto database_bytes = std::filesystem::file_size(file);
    const auto log_bytes = std::filesystem::file_size(wal);
    CHECK(database_bytes > static_cast<std::uintmax_t>(commits) * row.size());  // copied into the file
    // The log was copied whole, so the next commits write it again from its start: it does not
    // grow (a log nobody checkpoints would double).
    fill(commits);
    CHECK(eventually([&] { return db.background_checkpoints() > first && copied(); }));
    CHECK(std::filesystem::file_size(wal) < log_bytes + log_bytes / 4);
    auto count = db.query_int("SELECT count(*) FROM filler");
    REQUIRE(count);
    CHECK(*count == 2 * commits);
}

TEST_CASE("store: the SQLite wrapper reports a full database as 'disk full'", "[store]") {
    TempDir dir;
    auto opened = store::Database::open(dir.file("small.db"), store::OpenMode::read_write_create);
    REQUIRE(opened);
    auto& db = **opened;
    REQUIRE(db.exec("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 8"));
    auto insert = db.prepare("INSERT INTO t VALUES (zeroblob(100000))");
    REQUIRE(insert);
    auto result = insert->run();
    REQUIRE_FALSE(result);
    CHECK(result.error().exit == ExitCode::failure);
    CHECK(result.error().message.find("disk full") != std::string::npos);
    CHECK(result.error().message.find("small.db") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Opening: what is and is not an Aegis queue

TEST_CASE("store: a new queue file is tagged, in WAL mode, and reopens", "[store]") {
    TempDir dir;
    { auto queue = open_queue(dir.file()); }
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto application_id = (*db)->query_int("PRAGMA application_id");
    auto version = (*db)->query_int("PRAGMA user_version");
    auto synchronous = (*db)->query_int("PRAGMA synchronous");
    REQUIRE((application_id && version && synchronous));
    CHECK(*application_id == store::kApplicationId);
    CHECK(*version == store::kSchemaVersion);
    CHECK(*synchronous == 2);  // FULL
    auto mode = (*db)->prepare("PRAGMA journal_mode");
    REQUIRE(mode);
    REQUIRE(mode->step());
    CHECK(mode->column_text(0) == "wal");
}

TEST_CASE("store: a file with the first schema's index of every row by state gets the partial indexes", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 3; ++n) REQUIRE(queue->push(message(n)));
    }
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        REQUIRE(
            (*db)->exec("DROP INDEX messages_waiting; DROP INDEX messages_dead; "
                        "CREATE INDEX messages_by_state ON messages (state, priority, seq)"));
    }
    auto queue = open_queue(dir.file());
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto names = (*db)->prepare(
        "SELECT group_concat(name, ' ') FROM "
        "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' "
        "AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name)");
    REQUIRE(names);
    REQUIRE(names->step());
    CHECK(names->column_text(0) == "messages_dead messages_waiting");
    // The query that takes messages reads them through the index of waiting ones, in order.
    auto plan = (*db)->prepare(
        "EXPLAIN QUERY PLAN SELECT seq FROM messages WHERE state = 'waiting' "
        "AND priority = 2 AND seq > 0 ORDER BY seq LIMIT 1");
    REQUIRE(plan);
    REQUIRE(plan->step());
    CHECK(plan->column_text(3) == "SEARCH messages USING INDEX messages_waiting (priority=? AND seq>?)");
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3});
}

TEST_CASE("store: a state file is made 0600 with its log, and one open to others is refused", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    const auto mode_of = [](const std::string& name) {
        struct stat info {};
        REQUIRE(::stat(name.c_str(), &info) == 0);
        return info.st_mode & 07777;
    };
    const auto old_mask = ::umask(022);  // the common one: SQLite alone would make 0644 files
    {
        auto db = store::open_state_database(file);
        ::umask(old_mask);
        REQUIRE(db);
        for (const char* suffix : {"", "-wal", "-shm"}) {
            INFO(suffix);
            CHECK(mode_of(file.string() + suffix) == 0600);
        }
    }
    SECTION("the file") {
        ::chmod(file.c_str(), 0640);
        auto refused = store::open_state_database(file);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::bad_input);
        CHECK(refused.error().message ==
              fmt::format("state file {0} is open to the group or others (mode 0640); chmod 600 {0}", file.string()));
    }
    SECTION("a log left behind") {
        const auto log = file.string() + "-wal";
        std::ofstream{log};
        ::chmod(log.c_str(), 0604);
        auto refused = store::open_state_database(file);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::bad_input);
        CHECK(refused.error().message.find("chmod 600 " + log) != std::string::npos);
    }
}

TEST_CASE("store: another program's SQLite file is refused and left untouched", "[store]") {
    TempDir dir;
    const auto file = dir.file("other.db");
    {
        auto db = store::Database::open(file, store::OpenMode::read_write_create);
        REQUIRE(db);
        REQUIRE((*db)->exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('ada')"));
    }
    const auto before = file_bytes(file);
    auto queue = store::SqliteOutboundQueue::open(file, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message.find("other.db is not an Aegis queue") != std::string::npos);
    CHECK(file_bytes(file) == before);  // not converted to WAL, not reset

    SECTION("an SQLite file with another application id is refused too") {
        auto db = store::Database::open(file, store::OpenMode::read_write);
        REQUIRE(db);
        REQUIRE((*db)->exec("PRAGMA application_id = 1234; PRAGMA user_version = 1"));
        auto again = store::DeliveredIds::open(file);
        REQUIRE_FALSE(again);
        CHECK(again.error().exit == ExitCode::bad_input);
        CHECK(again.error().message.find("not an Aegis queue") != std::string::npos);
    }
}

TEST_CASE("store: a file that is not SQLite at all is refused as bad input", "[store]") {
    TempDir dir;
    const auto file = dir.file("garbage.db");
    {
        std::ofstream out(file, std::ios::binary);
        for (int i = 0; i < 200; ++i) out << "this is not a database, it is a text file line " << i << "\n";
    }
    ::chmod(file.c_str(), 0600);  // private, as a state file must be: refused for what it holds
    const auto before = file_bytes(file);
    auto queue = store::SqliteOutboundQueue::open(file, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message == file.string() +
                                       " is not an Aegis queue or is corrupt; move it aside with its -wal and -shm "
                                       "files (the next start makes an empty one)");
    CHECK(file_bytes(file) == before);
}

TEST_CASE("store: a queue written by a newer schema is refused, not reset", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        REQUIRE(queue->push(message(1)));
    }
    {
        auto db = store::Database::open(dir.file(), store::OpenMode::read_write);
        REQUIRE(db);
        REQUIRE((*db)->exec(fmt::format("PRAGMA user_version = {}", store::kSchemaVersion + 1)));
    }
    auto queue = store::SqliteOutboundQueue::open(dir.file(), {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::bad_input);
    CHECK(queue.error().message.find("newer Aegis") != std::string::npos);
    {
        auto db = store::Database::open(dir.file(), store::OpenMode::read_write);
        REQUIRE(db);
        auto rows = (*db)->query_int("SELECT count(*) FROM messages");
        REQUIRE(rows);
        CHECK(*rows == 1);  // still there
    }
}

TEST_CASE("store: a queue in a missing or unwritable directory fails with the path", "[store]") {
    TempDir dir;
    const auto missing = dir.path / "no-such-dir" / "queue.db";
    auto queue = store::SqliteOutboundQueue::open(missing, {});
    REQUIRE_FALSE(queue);
    CHECK(queue.error().exit == ExitCode::failure);
    CHECK(queue.error().message.find(missing.string()) != std::string::npos);
    CHECK(queue.error().message.find("cannot open") != std::string::npos);

    // Permissions do not stop root: the checks run in a child that drops to an unprivileged user.
    const auto locked = dir.path / "locked";
    std::filesystem::create_directory(locked);
    {
        auto existing = open_queue(dir.file());
        REQUIRE(existing->push(message(1)));
    }
    ::chmod(dir.path.c_str(), 0755);
    ::chmod(locked.c_str(), 0555);
    // The unprivileged user's own files, private but read-only to it.
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const auto name = dir.file().string() + suffix;
        if (!std::filesystem::exists(name)) continue;
        if (::geteuid() == 0) REQUIRE(::chown(name.c_str(), 65534, 65534) == 0);
        ::chmod(name.c_str(), 0400);
    }
    auto child = run_in_child([&](int out) {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 99;
        auto in_locked = store::SqliteOutboundQueue::open(locked / "queue.db", {});
        if (in_locked) return 10;
        write_text(out, in_locked.error().message + "\n");
        auto read_only = store::SqliteOutboundQueue::open(dir.file(), {});
        if (read_only) return 11;
        write_text(out, read_only.error().message + "\n");
        return static_cast<int>(read_only.error().exit) * 10 + static_cast<int>(in_locked.error().exit);
    });
    INFO(child.output);
    REQUIRE(WIFEXITED(child.status));
    CHECK(WEXITSTATUS(child.status) == 11);  // both ExitCode::failure
    CHECK(child.output.find((locked / "queue.db").string()) != std::string::npos);
    CHECK(child.output.find(dir.file().string()) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The outbound queue

TEST_CASE("store: pushed messages survive a reopen, whole and in the same order", "[store]") {
    TempDir dir;
    store::OutboundMessage rich = message(7, "agent.a1.status", Priority::high, 0);
    rich.kind = Kind::request;
    rich.correlation = id_of(99);
    rich.headers = {{"content-type", "application/json"}, {"x-empty", ""}, {"x-big", std::string(70'000, 'v')}};
    rich.payload = Bytes{0, 1, 0, 255};
    rich.timestamp_ms = 1'700'000'000'123;
    rich.expires_ms = 1'800'000'000'000;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 5; ++n) REQUIRE(queue->push(message(n)));
        REQUIRE(queue->push(rich));
        REQUIRE(queue->push(message(8, "agent.a1.logs", Priority::normal, 0)));  // an empty payload
        CHECK(queue->waiting() == 7);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 7);
    CHECK(queue->in_flight() == 0);
    auto stored = queue->get(id_of(7));
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    const auto& back = (*stored)->message;
    CHECK(back.id == rich.id);
    CHECK(back.channel == rich.channel);
    CHECK(back.priority == rich.priority);
    CHECK(back.kind == rich.kind);
    CHECK(back.correlation == rich.correlation);
    CHECK(back.headers == rich.headers);
    CHECK(back.timestamp_ms == rich.timestamp_ms);
    CHECK(back.expires_ms == rich.expires_ms);
    CHECK(back.payload == rich.payload);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{7, 1, 2, 3, 4, 5, 8});
}

TEST_CASE("store: critical goes first, then by priority, then in arrival order", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "agent.a1.logs", Priority::low)));
    REQUIRE(queue->push(message(2, "agent.a1.logs", Priority::normal)));
    REQUIRE(queue->push(message(3, "agent.a1.logs", Priority::critical)));
    REQUIRE(queue->push(message(4, "agent.a1.logs", Priority::normal)));
    REQUIRE(queue->push(message(5, "agent.a1.logs", Priority::high)));
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{3, 5, 2, 4, 1});
    CHECK(queue->waiting() == 0);
    CHECK(queue->in_flight() == 5);
}

TEST_CASE("store: a batch is consecutive messages of one channel and priority, within its limits", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    for (std::uint32_t n = 1; n <= 5; ++n) REQUIRE(queue->push(message(n, "a.x")));
    REQUIRE(queue->push(message(6, "a.y")));
    REQUIRE(queue->push(message(7, "a.x")));
    REQUIRE(queue->push(message(8, "a.x", Priority::high)));
    REQUIRE(queue->push(message(9, "a.x", Priority::normal, 100)));
    REQUIRE(queue->push(message(10, "a.x", Priority::normal, 100)));
    std::vector<store::OutboundMessage> expired;
    const auto encoded = aegis::protocol::encoded_message_bytes({}, 10);  // a message of 10 bytes in a batch
    const store::BatchLimits three{3, 2 * encoded + 5};
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{8});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{1, 2});  // two fit, not three
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{3, 4, 5});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{6});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{7});
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{9});  // larger: alone
    CHECK(numbers(take(*queue, three, 0, expired)) == std::vector<std::uint32_t>{10});
    CHECK(take(*queue, three, 0, expired).empty());
    CHECK(expired.empty());
    CHECK(queue->in_flight() == 10);
}

TEST_CASE("store: expire_due makes expired waiting messages dead letters without a take", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x", Priority::normal, 10, 500)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal, 10, 5'000)));
    REQUIRE(queue->push(message(3, "a.x")));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(queue->expire_due(1'000, expired));
    CHECK(numbers(expired) == std::vector<std::uint32_t>{1});
    CHECK(queue->waiting() == 2);
    CHECK(queue->dead() == 1);
    expired.clear();
    REQUIRE(queue->expire_due(2'000, expired));
    CHECK(expired.empty());
    REQUIRE(queue->expire_due(6'000, expired));
    CHECK(numbers(expired) == std::vector<std::uint32_t>{2});
    CHECK(queue->waiting() == 1);

    // An expired dead letter is not retried, unless with a fresh expiry.
    CHECK_FALSE(queue->retry(id_of(1), 6'000));
    auto retried = queue->retry_dead(6'000);
    REQUIRE(retried);
    CHECK(retried->count == 0);
    CHECK(retried->expired == 2);
    REQUIRE(queue->retry(id_of(1), 6'000, 60'000));
    CHECK(queue->waiting() == 2);
    auto stored = queue->get(id_of(1));
    REQUIRE(stored);
    REQUIRE(*stored);
    CHECK((*stored)->entry.expires_ms == 66'000);
}

TEST_CASE("store: headers count toward a batch's byte limit", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x")));
    auto with_headers = message(2, "a.x");
    with_headers.headers = {{"x-note", std::string(1000, 'v')}};
    REQUIRE(queue->push(with_headers));
    std::vector<store::OutboundMessage> expired;
    const store::BatchLimits limits{256, 500};  // both payloads would fit; the headers do not
    CHECK(numbers(take(*queue, limits, 0, expired)) == std::vector<std::uint32_t>{1});
    CHECK(numbers(take(*queue, limits, 0, expired)) == std::vector<std::uint32_t>{2});
}

TEST_CASE("store: acknowledged messages are gone for good", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
        std::vector<store::OutboundMessage> expired;
        auto batch = take(*queue, store::BatchLimits{2, 1 << 20}, 0, expired);
        REQUIRE(numbers(batch) == std::vector<std::uint32_t>{1, 2});
        REQUIRE(queue->acknowledge({id_of(1), id_of(2), id_of(42)}));  // an unknown id is ignored
        CHECK(queue->in_flight() == 0);
        CHECK(queue->waiting() == 2);
        REQUIRE(queue->acknowledge({id_of(1)}));  // twice: nothing happens
        CHECK(queue->waiting() == 2);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 2);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{3, 4});
    auto gone = queue->get(id_of(1));
    REQUIRE(gone);
    CHECK_FALSE(gone->has_value());
}

TEST_CASE("store: an acknowledgement deletes exactly its rows, and an id listed twice counts once", "[store]") {
    // In-flight rows are deleted by runs of consecutive row ids: the rows between two runs stay.
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 8; ++n) REQUIRE(queue->push(message(n, "agent.a1.logs", Priority::normal, n)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, store::BatchLimits{8, 1 << 20}, 0, expired).size() == 8);
        REQUIRE(queue->push(message(9, "agent.a1.logs", Priority::normal, 9)));
        CHECK(queue->live_bytes() == 45);  // 1 + 2 + ... + 9
        REQUIRE(queue->acknowledge({id_of(8), id_of(1), id_of(2), id_of(3), id_of(5), id_of(6), id_of(2), id_of(42)}));
        CHECK(queue->in_flight() == 2);  // 4 and 7
        CHECK(queue->waiting() == 1);    // 9
        CHECK(queue->live_bytes() == 4 + 7 + 9);
        for (const std::uint32_t n : {4U, 7U}) {
            auto kept = queue->get(id_of(n));
            REQUIRE((kept && kept->has_value()));
            CHECK((*kept)->entry.state == store::MessageState::in_flight);
        }
        for (const std::uint32_t n : {1U, 3U, 5U, 6U, 8U}) {
            auto gone = queue->get(id_of(n));
            REQUIRE(gone);
            CHECK_FALSE(gone->has_value());
        }
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->live_bytes() == 4 + 7 + 9);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{4, 7, 9});
}

TEST_CASE("store: messages in flight when the queue closed are waiting again at reopen", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
        std::vector<store::OutboundMessage> expired;
        REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
        REQUIRE(queue->in_flight() == 3);
    }  // closed without acknowledging
    auto queue = open_queue(dir.file());
    CHECK(queue->in_flight() == 0);
    CHECK(queue->waiting() == 4);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3, 4});
}

TEST_CASE("store: taking a batch writes nothing to the file, and acknowledging deletes the rows", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    std::vector<store::OutboundMessage> group;
    for (std::uint32_t n = 1; n <= 600; ++n) group.push_back(message(n, n <= 300 ? "a.x" : "a.y"));
    REQUIRE(queue->push_many(group));
    // PRAGMA data_version changes for a connection when another one commits.
    auto other = store::Database::open(dir.file(), store::OpenMode::read_write);
    REQUIRE(other);
    const auto version = [&] {
        auto value = (*other)->query_int("PRAGMA data_version");
        REQUIRE(value);
        return *value;
    };
    const auto before = version();
    std::vector<store::OutboundMessage> expired;
    std::vector<MessageId> taken;
    for (;;) {
        auto batch = take(*queue, store::BatchLimits{256, 1 << 20}, 0, expired);
        if (batch.empty()) break;
        for (const auto& m : batch) taken.push_back(m.id);
    }
    CHECK(taken.size() == 600);
    CHECK(queue->in_flight() == 600);
    CHECK(queue->waiting() == 0);
    CHECK(version() == before);  // nothing was committed
    auto listed = queue->list(store::MessageState::in_flight, 0);
    REQUIRE(listed);
    CHECK(listed->size() == 600);
    auto one = queue->get(id_of(5));
    REQUIRE((one && one->has_value()));
    CHECK((*one)->entry.state == store::MessageState::in_flight);

    REQUIRE(queue->acknowledge(taken));
    CHECK(version() != before);
    CHECK(queue->in_flight() == 0);
    auto rows = (*other)->query_int("SELECT count(*) FROM messages");
    REQUIRE(rows);
    CHECK(*rows == 0);
}

TEST_CASE("store: a priority a take found empty is read again after a push, a release or a due backoff", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 1'000));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(queue->push(message(1)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{1});
    CHECK(take(*queue, kLargeBatches, 0, expired).empty());  // every priority read to its end
    REQUIRE(queue->push(message(2, "agent.a1.logs", Priority::critical)));
    REQUIRE(queue->push(message(3, "agent.a1.logs", Priority::low)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{2});
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{3});
    REQUIRE(queue->push(message(4)));
    CHECK(numbers(take(*queue, kLargeBatches, 0, expired)) == std::vector<std::uint32_t>{4});
    REQUIRE(queue->release({id_of(2)}, 0));  // backing off until 1,000
    REQUIRE(queue->release({id_of(3), id_of(4)}, 0));
    CHECK(take(*queue, kLargeBatches, 999, expired).empty());
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{2});
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{4});
    CHECK(numbers(take(*queue, kLargeBatches, 1'000, expired)) == std::vector<std::uint32_t>{3});
    CHECK(take(*queue, kLargeBatches, 1'000, expired).empty());
    queue->release_in_flight();  // a dropped session: all of it again, in order
    CHECK(drain_one_by_one(*queue, 5'000) == std::vector<std::uint32_t>{2, 1, 4, 3});
    CHECK(expired.empty());
}

TEST_CASE("store: a row id reused after the newest row was acknowledged is still taken", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    std::vector<store::OutboundMessage> expired;
    for (std::uint32_t n = 1; n <= 3; ++n) {
        REQUIRE(queue->push(message(n)));
        auto batch = take(*queue, kLargeBatches, 0, expired);
        REQUIRE(numbers(batch) == std::vector<std::uint32_t>{n});
        REQUIRE(queue->acknowledge({batch.front().id}));  // the table is empty again: the next row is row 1 again
    }
    REQUIRE(queue->push(message(10, "a.x", Priority::low)));
    REQUIRE(queue->push(message(11, "a.x", Priority::low)));
    CHECK(numbers(take(*queue, kOneAtATime, 0, expired)) == std::vector<std::uint32_t>{10});
    REQUIRE(queue->acknowledge({id_of(11)}));  // acknowledged while waiting (a resend of an earlier run)
    CHECK(queue->waiting() == 0);
    REQUIRE(queue->acknowledge({id_of(10)}));
    REQUIRE(queue->push(message(12, "a.x", Priority::low)));
    CHECK(numbers(take(*queue, kOneAtATime, 0, expired)) == std::vector<std::uint32_t>{12});
}

TEST_CASE("store: a rolled-back acknowledgement leaves its messages to be sent again", "[store]") {
    TempDir dir;
    auto database = store::open_state_database(dir.file());
    REQUIRE(database);
    auto opened = store::SqliteOutboundQueue::open(*database, {});
    REQUIRE(opened);
    auto& queue = **opened;
    for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue.push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(queue, kLargeBatches, 0, expired).size() == 4);
    {
        auto outer = (*database)->begin();
        REQUIRE(outer);
        REQUIRE(queue.acknowledge({id_of(1), id_of(2)}));
        {
            auto unfinished = (*database)->begin();  // never committed: the outer commit rolls back
            REQUIRE(unfinished);
        }
        REQUIRE_FALSE(outer->commit());
    }
    REQUIRE(queue.reload_counters());
    // 1 and 2 are stored still, and no longer known to be in flight: taken again. 3 and 4 stay in flight.
    CHECK(queue.waiting() == 2);
    CHECK(queue.in_flight() == 2);
    CHECK(drain_one_by_one(queue, 0) == std::vector<std::uint32_t>{1, 2});
    REQUIRE(queue.acknowledge({id_of(1), id_of(2), id_of(3), id_of(4)}));
    CHECK(queue.waiting() + queue.in_flight() == 0);
}

TEST_CASE("store: every push that returned survives kill -9 of the process", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    int acks[2];
    REQUIRE(::pipe(acks) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(acks[0]);
        auto queue = store::SqliteOutboundQueue::open(file, {});
        if (!queue) ::_exit(2);
        std::vector<store::OutboundMessage> expired;
        for (std::uint32_t n = 0;; n += 4) {
            // Single pushes and small groups, so the kill lands in either kind of transaction.
            if (!(*queue)->push(message(n))) ::_exit(3);
            std::vector<store::OutboundMessage> group{message(n + 1), message(n + 2), message(n + 3)};
            if (!(*queue)->push_many(std::move(group))) ::_exit(3);
            if (n == 40) (void)(*queue)->take_batch(store::BatchLimits{10, 1 << 20}, 0, expired);
            const std::uint32_t stored = n + 3;
            if (::write(acks[1], &stored, sizeof(stored)) != sizeof(stored)) ::_exit(4);
        }
    }
    ::close(acks[1]);
    std::uint32_t highest = 0;
    std::size_t reports = 0;
    std::uint32_t value = 0;
    while (::read(acks[0], &value, sizeof(value)) == sizeof(value)) {
        highest = value;
        if (++reports == 150) ::kill(pid, SIGKILL);  // mid-stream, without warning
    }
    ::close(acks[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    REQUIRE(highest >= 150 * 4 - 1);

    auto queue = open_queue(file);
    CHECK(queue->in_flight() == 0);  // the batch in flight at the kill waits again
    CHECK(queue->waiting() >= highest + 1);
    auto entries = queue->list(store::MessageState::waiting, 0);
    REQUIRE(entries);
    const auto order = numbers(*entries);
    // Every acknowledged push is there, in push order, and nothing else but whole later pushes.
    REQUIRE(order.size() == queue->waiting());
    for (std::uint32_t n = 0; n < order.size(); ++n) {
        if (order[n] != n) {
            FAIL("message " << n << " is missing or out of order (found " << order[n] << ")");
        }
    }
}

TEST_CASE("store: a released message waits out an exponential backoff before it is sent again", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 5'000));
    REQUIRE(queue->push(message(1)));
    std::vector<store::OutboundMessage> expired;
    std::uint64_t now = 0;
    const std::vector<std::uint64_t> expected_delays{1'000, 2'000, 4'000, 5'000, 5'000};
    for (std::size_t attempt = 0; attempt < expected_delays.size(); ++attempt) {
        REQUIRE(take(*queue, kOneAtATime, now, expired).size() == 1);
        now += 10;
        REQUIRE(queue->release({id_of(1)}, now));
        CHECK(queue->waiting() == 1);
        CHECK(queue->in_flight() == 0);
        const auto due = now + expected_delays[attempt];
        CHECK(take(*queue, kOneAtATime, due - 1, expired).empty());
        auto entry = queue->get(id_of(1));
        REQUIRE((entry && entry->has_value()));
        CHECK((*entry)->entry.attempts == attempt + 1);
        CHECK((*entry)->entry.next_attempt_ms == due);
        now = due;
    }
    CHECK(take(*queue, kOneAtATime, now, expired).size() == 1);
    CHECK(expired.empty());
}

TEST_CASE("store: backoff jitter stays within its cap and a message backing off does not hold others", "[store]") {
    TempDir dir;
    store::QueueOptions options;
    options.backoff = {1'000, 60'000, 0};
    auto queue = open_queue(dir.file(), {}, options);
    for (std::uint32_t n = 1; n <= 50; ++n) REQUIRE(queue->push(message(n, "a.x", Priority::critical)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, kLargeBatches, 0, expired).size() == 50);
    std::vector<MessageId> all;
    for (std::uint32_t n = 1; n <= 50; ++n) all.push_back(id_of(n));
    REQUIRE(queue->release(all, 5'000));
    auto entries = queue->list(std::nullopt, 0);
    REQUIRE(entries);
    std::set<std::uint64_t> distinct;
    for (const auto& entry : *entries) {
        CHECK(entry.next_attempt_ms >= 5'000);
        CHECK(entry.next_attempt_ms <= 6'000);
        distinct.insert(entry.next_attempt_ms);
    }
    CHECK(distinct.size() > 10);  // jittered, not one stampede

    REQUIRE(queue->push(message(51, "a.y", Priority::low)));
    // Every critical one still waits out its backoff, so the low one goes first.
    CHECK(numbers(take(*queue, kLargeBatches, 4'999, expired)) == std::vector<std::uint32_t>{51});
    CHECK(take(*queue, kLargeBatches, 6'000, expired).size() == 50);
}

TEST_CASE("store: released messages go back in their original order", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(100, 100));
    for (std::uint32_t n = 1; n <= 4; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, store::BatchLimits{3, 1 << 20}, 0, expired).size() == 3);
    REQUIRE(queue->release({id_of(3), id_of(1), id_of(2)}, 0));
    CHECK(drain_one_by_one(*queue, 100) == std::vector<std::uint32_t>{1, 2, 3, 4});

    SECTION("release_in_flight puts everything in flight back at once, without backoff") {
        queue->release_in_flight();
        CHECK(queue->in_flight() == 0);
        CHECK(queue->waiting() == 4);
        CHECK(drain_one_by_one(*queue, 100) == std::vector<std::uint32_t>{1, 2, 3, 4});
    }
}

TEST_CASE("store: a message released too often becomes a dead letter", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(10, 10, 3));
    REQUIRE(queue->push(message(1)));
    std::vector<store::OutboundMessage> expired;
    std::uint64_t now = 0;
    for (int attempt = 1; attempt <= 3; ++attempt) {
        REQUIRE(take(*queue, kOneAtATime, now, expired).size() == 1);
        REQUIRE(queue->release({id_of(1)}, now));
        now += 10;
    }
    CHECK(queue->waiting() == 0);
    CHECK(queue->in_flight() == 0);
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(dead->size() == 1);
    CHECK(dead->front().dead_reason == "gave up after 3 attempts");
}

TEST_CASE("store: expired messages become dead letters with the reason and are reported", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    REQUIRE(queue->push(message(1, "a.x", Priority::normal, 10, 500)));
    REQUIRE(queue->push(message(2, "a.x", Priority::normal, 10, 0)));
    REQUIRE(queue->push(message(3, "a.x", Priority::normal, 10, 700)));
    std::vector<store::OutboundMessage> expired;
    auto batch = take(*queue, kLargeBatches, 600, expired);
    CHECK(numbers(batch) == std::vector<std::uint32_t>{2, 3});
    CHECK(numbers(expired) == std::vector<std::uint32_t>{1});
    CHECK(queue->in_flight() == 2);
    CHECK(queue->waiting() == 0);
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(dead->size() == 1);
    CHECK(number_of(dead->front().id) == 1);
    CHECK(dead->front().dead_reason == "expired");
    CHECK(dead->front().dead_at_ms == 600);
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == 1);
    CHECK(stats->bytes == 20);
    CHECK(stats->dead_bytes == 10);
}

TEST_CASE("store: a full queue refuses new messages and keeps the old ones", "[store]") {
    TempDir dir;
    SECTION("by count") {
        auto queue = open_queue(dir.file(), store::QueueLimits{3, 1 << 20, 100});
        for (std::uint32_t n = 1; n <= 3; ++n) REQUIRE(queue->push(message(n)));
        auto refused = queue->push(message(4));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().exit == ExitCode::failure);
        CHECK(refused.error().message == "queue full (3 messages / 30 bytes, limit 3 messages / 1048576 bytes)");
        CHECK(queue->waiting() == 3);
        CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK_FALSE(queue->push(message(4)));  // in flight still counts
        REQUIRE(queue->acknowledge({id_of(1)}));
        CHECK(queue->push(message(4)));
    }
    SECTION("by bytes, and a group that does not fit is refused whole") {
        auto queue = open_queue(dir.file(), store::QueueLimits{100, 100, 100});
        REQUIRE(queue->push(message(1, "a.x", Priority::normal, 60)));
        CHECK_FALSE(queue->push(message(2, "a.x", Priority::normal, 50)));
        std::vector<store::OutboundMessage> group{message(3, "a.x", Priority::normal, 20),
                                                  message(4, "a.x", Priority::normal, 30)};
        auto refused = queue->push_many(std::move(group));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("queue full") == 0);
        auto entries = queue->list(std::nullopt, 0);
        REQUIRE(entries);
        CHECK(numbers(*entries) == std::vector<std::uint32_t>{1});
    }
}

TEST_CASE("store: push_many stores a group in one transaction, and a repeated id once", "[store]") {
    TempDir dir;
    {
        auto queue = open_queue(dir.file());
        std::vector<store::OutboundMessage> group;
        for (std::uint32_t n = 1; n <= 100; ++n) group.push_back(message(n));
        group.push_back(message(5));  // the same message id again
        REQUIRE(queue->push_many(std::move(group)));
        CHECK(queue->waiting() == 100);
        REQUIRE(queue->push(message(7)));
        CHECK(queue->waiting() == 100);
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == 100);
}

TEST_CASE("store: requests and replies are committed without an fsync, anything else with one", "[store]") {
    TempDir dir;
    auto database = store::open_state_database(dir.file());
    REQUIRE(database);
    auto queue = store::SqliteOutboundQueue::open(*database, store::QueueLimits{});
    REQUIRE(queue);
    const auto synchronous = [&] { return (*database)->query_int("PRAGMA synchronous"); };
    auto request = message(1);
    request.kind = Kind::request;
    auto reply = message(2);
    reply.kind = Kind::reply;
    REQUIRE((*queue)->push_many({request, reply}));
    CHECK(synchronous().value() == 1);  // NORMAL: in the log before the commit returns, synced at checkpoints
    auto another_request = message(3);
    another_request.kind = Kind::request;
    REQUIRE((*queue)->push_many({another_request, message(4)}));
    CHECK(synchronous().value() == 2);  // FULL: one event in the group syncs the whole commit
    CHECK((*queue)->waiting() == 4);
}

TEST_CASE("store: a full disk fails the push cleanly and keeps what was queued", "[store]") {
    TempDir dir;
    std::size_t stored = 0;
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        auto pages = (*db)->query_int("PRAGMA page_count");
        REQUIRE(pages);
        REQUIRE((*db)->exec(fmt::format("PRAGMA max_page_count = {}", *pages + 20)));
        auto opened = store::SqliteOutboundQueue::open(*db, {});
        REQUIRE(opened);
        auto& queue = **opened;
        aegis::Result<void> pushed;
        for (std::uint32_t n = 1; n < 1000 && pushed; ++n) {
            pushed = queue.push(message(n, "a.x", Priority::normal, 1000));
            if (pushed) ++stored;
        }
        REQUIRE_FALSE(pushed);
        CHECK(pushed.error().exit == ExitCode::failure);
        CHECK(pushed.error().message == "cannot write " + dir.file().string() + ": disk full");
        CHECK(queue.waiting() == stored);
        REQUIRE(stored > 10);

        std::vector<store::OutboundMessage> group;
        for (std::uint32_t n = 5000; n < 5100; ++n) group.push_back(message(n, "a.x", Priority::normal, 1000));
        CHECK_FALSE(queue.push_many(std::move(group)));  // all or nothing
        CHECK(queue.waiting() == stored);
        auto entries = queue.list(std::nullopt, 0);  // reading still works
        REQUIRE(entries);
        CHECK(entries->size() == stored);
        REQUIRE(queue.remove(id_of(1)));  // and so does deleting
        --stored;
    }
    auto queue = open_queue(dir.file());
    CHECK(queue->waiting() == stored);
    auto entries = queue->list(std::nullopt, 0);
    REQUIRE(entries);
    REQUIRE(entries->size() == stored);
    CHECK(number_of(entries->front().id) == 2);
    CHECK(number_of(entries->back().id) == stored + 1);
}

TEST_CASE("store: running out of file size in a child process leaves a consistent queue", "[store]") {
    TempDir dir;
    const auto file = dir.file();
    { auto queue = open_queue(file); }
    auto child = run_in_child([&](int out) {
        auto queue = store::SqliteOutboundQueue::open(file, {});
        if (!queue) return 2;
        ::signal(SIGXFSZ, SIG_IGN);
        const rlimit limit{1024 * 1024, 1024 * 1024};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 3;
        std::uint32_t stored = 0;
        for (std::uint32_t n = 1; n < 100'000; ++n) {
            auto pushed = (*queue)->push(message(n, "a.x", Priority::normal, 2000));
            if (!pushed) {
                write_text(out, fmt::format("{}\n{}", stored, pushed.error().message));
                return static_cast<int>(pushed.error().exit);
            }
            stored = n;
        }
        return 4;
    });
    INFO(child.output);
    REQUIRE(WIFEXITED(child.status));
    CHECK(WEXITSTATUS(child.status) == static_cast<int>(ExitCode::failure));
    const auto newline = child.output.find('\n');
    REQUIRE(newline != std::string::npos);
    const auto stored = static_cast<std::size_t>(std::stoul(child.output.substr(0, newline)));
    const auto error = child.output.substr(newline + 1);
    CHECK((error.find("disk full") != std::string::npos || error.find("I/O error") != std::string::npos));
    CHECK(error.find(file.string()) != std::string::npos);
    REQUIRE(stored > 10);

    auto queue = open_queue(file);
    CHECK(queue->waiting() == stored);
    REQUIRE(queue->push(message(999'999)));  // and it still works
}

TEST_CASE("store: refused messages become dead letters; the operator lists, retries and purges them", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    for (std::uint32_t n = 1; n <= 6; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, store::BatchLimits{4, 1 << 20}, 0, expired).size() == 4);
    REQUIRE(queue->dead_letter({id_of(1), id_of(2)}, "refused", 0));
    REQUIRE(queue->dead_letter({id_of(3)}, "not allowed to publish on agent.a1.logs", 77));
    CHECK(queue->waiting() == 2);
    CHECK(queue->in_flight() == 1);

    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    REQUIRE(numbers(*dead) == std::vector<std::uint32_t>{1, 2, 3});
    CHECK((*dead)[0].dead_reason == "refused");
    CHECK((*dead)[2].dead_reason == "not allowed to publish on agent.a1.logs");
    CHECK((*dead)[2].dead_at_ms == 77);
    CHECK((*dead)[2].payload_bytes == 10);

    auto limited = queue->list(std::nullopt, 2);
    REQUIRE(limited);
    CHECK(limited->size() == 2);

    auto in_flight_retry = queue->retry(id_of(4));
    REQUIRE_FALSE(in_flight_retry);
    CHECK(in_flight_retry.error().message.find("being sent") != std::string::npos);
    auto unknown = queue->retry(id_of(42));
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message == "no message 0000002a0000000000000000000000a5 in the queue");

    REQUIRE(queue->retry(id_of(2)));
    CHECK(queue->waiting() == 3);
    auto retried = queue->get(id_of(2));
    REQUIRE((retried && retried->has_value()));
    CHECK((*retried)->entry.state == store::MessageState::waiting);
    CHECK((*retried)->entry.attempts == 0);
    CHECK((*retried)->entry.dead_reason.empty());

    auto all_dead = queue->retry_dead(0);
    REQUIRE(all_dead);
    CHECK(all_dead->count == 2);
    CHECK(queue->waiting() == 5);
    CHECK(drain_one_by_one(*queue, 0) == std::vector<std::uint32_t>{1, 2, 3, 5, 6});

    REQUIRE(queue->dead_letter({id_of(5), id_of(6)}, "refused", 0));
    auto purged = queue->purge_dead();
    REQUIRE(purged);
    CHECK(*purged == 2);
    REQUIRE(queue->remove(id_of(1)));
    CHECK_FALSE(queue->remove(id_of(1)));
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == 0);
    CHECK(stats->in_flight == 3);  // 2 and 3 taken again, and 4
    auto everything = queue->purge_all();
    REQUIRE(everything);
    CHECK(*everything == 3);
    CHECK(queue->waiting() + queue->in_flight() == 0);
}

TEST_CASE("store: the dead-letter list is bounded, oldest first out", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), store::QueueLimits{1000, 1 << 20, 10});
    for (std::uint32_t n = 1; n <= 25; ++n) REQUIRE(queue->push(message(n)));
    std::vector<store::OutboundMessage> expired;
    REQUIRE(take(*queue, kLargeBatches, 0, expired).size() == 25);
    for (std::uint32_t n = 1; n <= 25; ++n) REQUIRE(queue->dead_letter({id_of(n)}, "refused", n));
    auto dead = queue->list(store::MessageState::dead, 0);
    REQUIRE(dead);
    CHECK(dead->size() <= 10);
    CHECK(dead->size() >= 9);
    CHECK(number_of(dead->back().id) == 25);
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->dead == dead->size());
}

TEST_CASE("store: stats count bytes and the oldest waiting message", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    auto empty = queue->stats();
    REQUIRE(empty);
    CHECK(empty->oldest_waiting_ms == 0);
    REQUIRE(queue->push(message(5, "a.x", Priority::normal, 40)));
    REQUIRE(queue->push(message(3, "a.x", Priority::low, 2)));
    auto stats = queue->stats();
    REQUIRE(stats);
    CHECK(stats->waiting == 2);
    CHECK(stats->bytes == 42);
    CHECK(stats->oldest_waiting_ms == 1'003);
    CHECK(stats->file_bytes > 0);
}

// ---------------------------------------------------------------------------------------------
// The delivered-id window

TEST_CASE("store: delivered ids are remembered across a restart", "[store]") {
    TempDir dir;
    {
        auto ids = store::DeliveredIds::open(dir.file(), 100);
        REQUIRE(ids);
        CHECK((*ids)->first_sight(id_of(1)));
        CHECK_FALSE((*ids)->first_sight(id_of(1)));
        CHECK((*ids)->first_sight(id_of(2)));
        CHECK((*ids)->pending() == 2);
        REQUIRE((*ids)->flush());
        CHECK((*ids)->pending() == 0);
        REQUIRE((*ids)->remember({id_of(3)}));
        CHECK((*ids)->first_sight(id_of(4)));  // never flushed: forgotten by the restart
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->size() == 3);
    CHECK_FALSE((*ids)->first_sight(id_of(1)));
    CHECK_FALSE((*ids)->first_sight(id_of(2)));
    CHECK_FALSE((*ids)->first_sight(id_of(3)));
    CHECK((*ids)->first_sight(id_of(4)));
}

TEST_CASE("store: ids of a delivery that could not be stored are forgotten", "[store]") {
    TempDir dir;
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->first_sight(id_of(1)));
    REQUIRE((*ids)->flush());
    CHECK((*ids)->first_sight(id_of(2)));
    CHECK((*ids)->first_sight(id_of(3)));
    (*ids)->forget_pending();
    CHECK((*ids)->pending() == 0);
    CHECK((*ids)->size() == 1);
    CHECK((*ids)->seen(id_of(1)));
    CHECK((*ids)->first_sight(id_of(2)));  // the redelivery is taken
    CHECK((*ids)->first_sight(id_of(3)));
}

TEST_CASE("store: the delivered-id window keeps the newest ids, in memory and on disk", "[store]") {
    TempDir dir;
    {
        auto ids = store::DeliveredIds::open(dir.file(), 100);
        REQUIRE(ids);
        for (std::uint32_t n = 0; n < 1000; ++n) {
            CHECK((*ids)->first_sight(id_of(n)));
            if (n % 50 == 49) REQUIRE((*ids)->flush());
        }
        CHECK((*ids)->size() == 100);
        CHECK((*ids)->first_sight(id_of(0)));  // long forgotten
    }
    {
        auto db = store::open_state_database(dir.file());
        REQUIRE(db);
        auto rows = (*db)->query_int("SELECT count(*) FROM delivered");
        REQUIRE(rows);
        CHECK(*rows >= 100);
        CHECK(*rows <= 100 + 64);  // pruned in batches
    }
    auto ids = store::DeliveredIds::open(dir.file(), 100);
    REQUIRE(ids);
    CHECK((*ids)->size() == 100);
    CHECK_FALSE((*ids)->seen(id_of(899)));
    CHECK((*ids)->seen(id_of(900)));
    CHECK((*ids)->seen(id_of(999)));
}

// ---------------------------------------------------------------------------------------------
// Durable inboxes

namespace {

[[nodiscard]] store::InboxEntry entry(std::uint32_t n, std::string channel = "backend.all.policies") {
    return store::InboxEntry{id_of(n), std::move(channel), Bytes{static_cast<std::uint8_t>(n), 0, 1}};
}

[[nodiscard]] std::vector<std::uint32_t> numbers(const std::vector<store::InboxItem>& items) {
    std::vector<std::uint32_t> out;
    for (const auto& item : items) out.push_back(number_of(item.id));
    return out;
}

}  // namespace

TEST_CASE("store: a durable inbox keeps messages per cursor until consumed, across a restart", "[store]") {
    TempDir dir;
    std::uint64_t second = 0;
    {
        auto inbox = store::DurableInbox::open(dir.file());
        REQUIRE(inbox);
        auto& in = **inbox;
        REQUIRE(in.create_cursor("nightly", {"backend.all.>"}, 5));
        REQUIRE(in.create_cursor("audit", {"backend.*.policies", "backend.a1.>"}, 6));
        auto added = in.append({"nightly", "audit", "nobody"}, {entry(1), entry(2), entry(3)});
        REQUIRE(added);
        CHECK(*added == 6);
        added = in.append({"nightly"}, {entry(4, "backend.all.tests")});
        REQUIRE(added);
        CHECK(*added == 1);
        added = in.append({"nightly", "audit"}, {entry(2), entry(3)});  // redelivered: not stored twice
        REQUIRE(added);
        CHECK(*added == 0);

        auto items = in.read_after("nightly", 0, 0);
        REQUIRE(items);
        CHECK(numbers(*items) == std::vector<std::uint32_t>{1, 2, 3, 4});
        CHECK((*items)[3].channel == "backend.all.tests");
        CHECK((*items)[0].envelope == Bytes{1, 0, 1});
        for (std::size_t i = 1; i < items->size(); ++i) CHECK((*items)[i].sequence > (*items)[i - 1].sequence);
        second = (*items)[1].sequence;
        auto page = in.read_after("nightly", (*items)[0].sequence, 2);
        REQUIRE(page);
        CHECK(numbers(*page) == std::vector<std::uint32_t>{2, 3});

        REQUIRE(in.advance("nightly", second));
        auto audit = in.read_after("audit", 0, 0);
        REQUIRE(audit);
        CHECK(numbers(*audit) == std::vector<std::uint32_t>{1, 2, 3});  // another cursor is untouched
    }
    auto inbox = store::DurableInbox::open(dir.file());
    REQUIRE(inbox);
    auto& in = **inbox;
    auto items = in.read_after("nightly", 0, 0);
    REQUIRE(items);
    CHECK(numbers(*items) == std::vector<std::uint32_t>{3, 4});
    auto info = in.cursor("nightly");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->position == second);
    CHECK((*info)->pending == 2);
    CHECK((*info)->patterns == std::vector<std::string>{"backend.all.>"});
    CHECK((*info)->created_ms == 5);

    REQUIRE(in.advance("nightly", 1));  // never backwards
    info = in.cursor("nightly");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->position == second);

    auto all = in.cursors();
    REQUIRE(all);
    REQUIRE(all->size() == 2);
    CHECK(all->front().name == "audit");
    CHECK(all->front().patterns == std::vector<std::string>{"backend.*.policies", "backend.a1.>"});

    auto unknown = in.read_after("nobody", 0, 0);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message == "no durable subscription named 'nobody'");
    CHECK_FALSE(in.advance("nobody", 5));

    auto removed = in.remove_cursor("audit");
    REQUIRE(removed);
    CHECK(*removed);
    removed = in.remove_cursor("audit");
    REQUIRE(removed);
    CHECK_FALSE(*removed);
    auto rows = store::open_state_database(dir.file());
    REQUIRE(rows);
    auto audit_rows = (*rows)->query_int("SELECT count(*) FROM inbox WHERE cursor = 'audit'");
    REQUIRE(audit_rows);
    CHECK(*audit_rows == 0);
}

TEST_CASE("store: a full inbox drops its oldest messages and counts them", "[store]") {
    TempDir dir;
    auto inbox = store::DurableInbox::open(dir.file(), store::InboxLimits{5});
    REQUIRE(inbox);
    auto& in = **inbox;
    REQUIRE(in.create_cursor("slow", {">"}, 0));
    std::vector<store::InboxEntry> entries;
    for (std::uint32_t n = 1; n <= 8; ++n) entries.push_back(entry(n));
    REQUIRE(in.append({"slow"}, entries));
    auto items = in.read_after("slow", 0, 0);
    REQUIRE(items);
    CHECK(numbers(*items) == std::vector<std::uint32_t>{4, 5, 6, 7, 8});
    auto info = in.cursor("slow");
    REQUIRE((info && info->has_value()));
    CHECK((*info)->dropped == 3);
    CHECK((*info)->pending == 5);
    CHECK(in.pending("slow") == 5);
    CHECK(in.pending("nobody") == 0);
}

TEST_CASE("store: the queue, the id window and the inboxes share one database file", "[store]") {
    TempDir dir;
    auto db = store::open_state_database(dir.file());
    REQUIRE(db);
    auto queue = store::SqliteOutboundQueue::open(*db, {});
    auto ids = store::DeliveredIds::open(*db, 10);
    auto inbox = store::DurableInbox::open(*db);
    REQUIRE((queue && ids && inbox));
    REQUIRE((*queue)->push(message(1)));
    REQUIRE((*ids)->remember({id_of(2)}));
    REQUIRE((*inbox)->create_cursor("c", {">"}, 0));
    REQUIRE((*inbox)->append({"c"}, {entry(3)}));
    auto again = store::SqliteOutboundQueue::open(dir.file(), {});
    REQUIRE(again);
    CHECK((*again)->waiting() == 1);
}

// ---------------------------------------------------------------------------------------------
// Throughput, reported rather than asserted (the figures depend on the disk).

TEST_CASE("store: throughput of grouped and single pushes", "[store][.bench]") {
    TempDir dir;
    auto queue = open_queue(dir.file());
    using Clock = std::chrono::steady_clock;
    std::vector<store::OutboundMessage> group;
    for (std::uint32_t n = 0; n < 10'000; ++n) group.push_back(message(n, "agent.a1.logs", Priority::normal, 100));
    auto start = Clock::now();
    REQUIRE(queue->push_many(std::move(group)));
    const double grouped = std::chrono::duration<double>(Clock::now() - start).count();

    constexpr int kSingles = 300;
    start = Clock::now();
    for (std::uint32_t n = 0; n < kSingles; ++n)
        REQUIRE(queue->push(message(100'000 + n, "agent.a1.logs", Priority::normal, 100)));
    const double singles = std::chrono::duration<double>(Clock::now() - start).count();

    std::vector<store::OutboundMessage> expired;
    start = Clock::now();
    std::size_t taken = 0;
    for (;;) {
        auto batch = take(*queue, store::BatchLimits{256, 1 << 20}, 0, expired);
        if (batch.empty()) break;
        taken += batch.size();
        std::vector<MessageId> batch_ids;
        for (const auto& m : batch) batch_ids.push_back(m.id);
        REQUIRE(queue->acknowledge(batch_ids));
    }
    const double drained = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(taken == 10'000 + kSingles);
    WARN(fmt::format("push_many: 10000 x 100 B in {:.3f} s = {:.0f} messages/s", grouped, 10'000 / grouped));
    WARN(fmt::format("single push (synchronous=FULL): {} in {:.3f} s = {:.0f} pushes/s", kSingles, singles,
                     kSingles / singles));
    WARN(fmt::format("take_batch(256) + acknowledge: {} in {:.3f} s = {:.0f} messages/s", taken, drained,
                     static_cast<double>(taken) / drained));
}

TEST_CASE("store: deferred messages wait without counting an attempt, and the rest of the queue goes on", "[store]") {
    TempDir dir;
    // One attempt allowed: a release would make a dead letter at once; a deferral must not.
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 60'000, 1));
    REQUIRE(
        queue->push_many({message(1, "agent.a1.logs"), message(2, "agent.a1.logs"), message(3, "agent.a1.status")}));
    std::vector<store::OutboundMessage> expired;
    auto logs = queue->take_batch(kLargeBatches, 100, expired);
    REQUIRE(logs);
    CHECK(numbers(*logs) == std::vector<std::uint32_t>{1, 2});
    for (int round = 0; round < 5; ++round) {  // refused again and again: never given up
        INFO("round " << round);
        REQUIRE(queue->defer({id_of(1), id_of(2)}, 10'000));
        CHECK(queue->waiting() == 3);
        CHECK(queue->in_flight() == 0);
        // Before 10 s the other channel goes; 1 and 2 stay back without holding it up.
        auto other = queue->take_batch(kLargeBatches, 200, expired);
        REQUIRE(other);
        CHECK(numbers(*other) == std::vector<std::uint32_t>{3});
        auto none = queue->take_batch(kLargeBatches, 200, expired);
        REQUIRE(none);
        CHECK(none->empty());
        queue->release_in_flight();  // 3 waits again, as after a lost session
        auto due = queue->take_batch(kLargeBatches, 10'000, expired);
        REQUIRE(due);
        CHECK(numbers(*due) == std::vector<std::uint32_t>{1, 2});
    }
    CHECK(queue->dead() == 0);
    auto listed = queue->list(std::nullopt, 0);
    REQUIRE(listed);
    CHECK(listed->size() == 3);
    for (const auto& entry : *listed) CHECK(entry.attempts == 0);
    CHECK(expired.empty());
}

TEST_CASE("store: undeferring a channel makes its waiting messages due at once, others keep their backoff", "[store]") {
    TempDir dir;
    auto queue = open_queue(dir.file(), {}, fixed_backoff(1'000, 60'000));
    REQUIRE(queue->push_many({message(1, "agent.a1.logs"), message(2, "agent.a1.status")}));
    std::vector<store::OutboundMessage> expired;
    auto first = queue->take_batch(kOneAtATime, 100, expired);
    auto second = queue->take_batch(kOneAtATime, 100, expired);
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(queue->defer({id_of(1)}, 50'000));
    REQUIRE(queue->release({id_of(2)}, 100));  // a regular backoff: due at 1100
    auto none = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(none);
    CHECK(none->empty());
    REQUIRE(queue->undefer_channel("agent.a1.logs"));
    auto now_due = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(now_due);
    CHECK(numbers(*now_due) == std::vector<std::uint32_t>{1});
    auto still_none = queue->take_batch(kOneAtATime, 200, expired);
    REQUIRE(still_none);
    CHECK(still_none->empty());
}
