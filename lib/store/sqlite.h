#pragma once
// A small RAII layer over the SQLite C API: a connection, prepared statements and
// transactions, with every SQLite failure turned into an aegis::Error that names the file.
// SQLite itself is only included by lib/store/*.cpp; this header just forward-declares it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace aegis::store {

class BackgroundCheckpoint;
class Database;

// One prepared statement. Parameters are numbered from 1, columns from 0 (as in SQLite).
class Statement {
public:
    Statement() = default;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    ~Statement();

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::uint64_t value);  // stored as a signed 64-bit integer
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, ByteView blob);
    Statement& bind_null(int index);

    // True while a row is available; false once the statement is done.
    [[nodiscard]] Result<bool> step();
    // Runs a statement that returns no rows (or whose rows are not wanted).
    [[nodiscard]] Result<void> run();
    // Ready to run again: bindings cleared, cursor rewound.
    void reset();

    [[nodiscard]] std::int64_t column_int(int column) const;
    [[nodiscard]] std::uint64_t column_uint(int column) const;
    [[nodiscard]] std::string column_text(int column) const;
    [[nodiscard]] Bytes column_blob(int column) const;
    [[nodiscard]] ByteView column_blob_view(int column) const;  // valid until the next step or reset
    [[nodiscard]] bool column_is_null(int column) const;

private:
    friend class Database;
    Statement(sqlite3_stmt* statement, const Database* database) : statement_(statement), database_(database) {}

    sqlite3_stmt* statement_ = nullptr;
    const Database* database_ = nullptr;
    Result<void> bind_status_;  // the first failed bind, reported by step()
};

// An open transaction; rolled back on destruction unless committed. A transaction begun while
// another is open joins it: its commit only marks its part done, and the outermost commit
// writes everything at once, with the strongest durability any part asked for (a relaxed
// outer transaction that a power_loss part joined syncs the log after its COMMIT). An inner part
// that is not committed makes the outermost commit roll back and fail.
class Transaction {
public:
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    Transaction(Transaction&& other) noexcept : database_(other.database_) { other.database_ = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();

    [[nodiscard]] Result<void> commit();

private:
    friend class Database;
    explicit Transaction(Database* database) : database_(database) {}
    Database* database_;
};

// A cached statement on loan: reset on return, so no half-read query keeps a read snapshot open.
class StatementLease {
public:
    explicit StatementLease(Statement* statement) : statement_(statement) {}
    StatementLease(const StatementLease&) = delete;
    StatementLease& operator=(const StatementLease&) = delete;
    StatementLease(StatementLease&& other) noexcept : statement_(std::exchange(other.statement_, nullptr)) {}
    StatementLease& operator=(StatementLease&&) = delete;
    ~StatementLease() {
        if (statement_ != nullptr) statement_->reset();
    }

    Statement* operator->() const { return statement_; }
    Statement& operator*() const { return *statement_; }

private:
    Statement* statement_;
};

enum class OpenMode { read_write_create, read_write, read_only };

// What a committed transaction must survive. In WAL mode both survive the process being killed
// (the commit is written to the log before COMMIT returns); only power_loss also survives the
// machine losing power, at the price of an fsync per commit.
enum class Durability { power_loss, process_crash };

// One connection. Not thread-safe: a Database and its statements belong to one thread.
class Database {
public:
    // `label` names the kind of file in errors ("FILE is not an <label> or is corrupt; ...").
    // The file and its -wal and -shm must be private (store/private_files.h); a file it
    // creates is made 0600, and SQLite gives the -wal and -shm files the same mode.
    [[nodiscard]] static Result<std::unique_ptr<Database>> open(const std::filesystem::path& file, OpenMode mode,
                                                                std::string label = "Aegis database");
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;
    ~Database();

    [[nodiscard]] Result<void> exec(std::string_view sql);
    // One statement, prepared once and kept (see cached()): for the ones run at every
    // transaction, BEGIN, COMMIT and the synchronous pragmas, which exec() would parse each time.
    [[nodiscard]] Result<void> exec_cached(const std::string& sql);
    [[nodiscard]] Result<Statement> prepare(std::string_view sql);
    // A statement prepared once and kept for the life of the connection, ready to bind.
    [[nodiscard]] Result<StatementLease> cached(const std::string& sql);
    // The single integer a query returns (PRAGMA user_version, SELECT count(*) ...).
    [[nodiscard]] Result<std::int64_t> query_int(std::string_view sql);

    // BEGIN IMMEDIATE: takes the write lock now, so the transaction cannot fail later with BUSY.
    // Inside an open transaction: joins it (see Transaction).
    [[nodiscard]] Result<Transaction> begin(Durability durability = Durability::power_loss);
    // For in-memory state that follows the file: `then` runs once the outermost open transaction
    // ends, with true when its commit() succeeded and false when it rolled back or failed; the
    // newest first, so that each can put back what it saw. Outside a transaction it runs at once
    // with true (what was written is committed).
    void on_outcome(std::function<void(bool committed)> then);

    // Deferred log sync, for a writer with other work to do while the device flushes (the
    // broker sends a batch to the gateway meanwhile). Between defer_log_sync() and
    // stop_deferring_log_sync(), a commit that asks for power_loss commits without syncing: its
    // rows are in the log and visible, and survive the process being killed. stop_deferring_log_sync()
    // says whether such a commit owes a sync; its writer calls sync_log() before it promises
    // anyone that those rows survive power loss. (Any later commit with power_loss syncs them too.)
    void defer_log_sync() { deferring_sync_ = true; }
    [[nodiscard]] bool stop_deferring_log_sync() {
        deferring_sync_ = false;
        return std::exchange(sync_owed_, false);
    }
    // Syncs the write-ahead log: what has been committed survives power loss once it returns.
    // Not a checkpoint.
    [[nodiscard]] Result<void> sync_log();

    // Puts the file in WAL mode with synchronous=FULL (failing when the file system cannot hold
    // a write-ahead log). The log is copied back into the file by a thread of this connection's
    // own (BackgroundCheckpoint) once it holds kBackgroundCheckpointFrames pages, instead of by
    // the commit that passed SQLite's bound. The committing thread checkpoints only a log past
    // kForegroundCheckpointFrames, which a busy writer can outrun the thread to. A log that grew
    // past kLogSizeLimitBytes (a long outage, a reader holding the checkpoint back) is cut back to
    // it when it is next written from its start (PRAGMA journal_size_limit): its disk comes back.
    //
    // The first commit after a log copied whole writes it again from its start, and SQLite syncs
    // the log's new header there, in that commit, whatever its durability (a restart not synced
    // could corrupt the file on power loss): 2-8 ms on the committing thread, which a request
    // or reply committed without an fsync waits for. So the log is copied at 8000 pages (32 MiB
    // of 4 KiB pages), not 1000: a restart every 8000 pages, not every 1000, which takes the
    // restarts out of the round trips' 99th percentile, for 32 MiB of disk per state file.
    [[nodiscard]] Result<void> use_write_ahead_log();
    static constexpr int kBackgroundCheckpointFrames = 8000;
    static constexpr int kForegroundCheckpointFrames = 32000;
    static constexpr std::int64_t kLogSizeLimitBytes = 64 * 1024 * 1024;  // twice the thread's bound at 4 KiB pages
    // Checkpoints the thread has finished (for tests).
    [[nodiscard]] int background_checkpoints() const;

    // PRAGMA quick_check: every page and b-tree of the file and its log is well formed (index
    // contents are not compared with their tables). A damaged file fails with
    // ExitCode::bad_input, naming it and what to do; it is never repaired or reset.
    [[nodiscard]] Result<void> check_integrity();

    [[nodiscard]] std::int64_t last_insert_rowid() const;
    [[nodiscard]] int changes() const;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }
    [[nodiscard]] const std::string& label() const { return label_; }

    // The error for an SQLite result code on this connection, worded for an operator.
    [[nodiscard]] Error error(int code) const;

private:
    Database(sqlite3* handle, std::filesystem::path path, std::string label);
    friend class Transaction;
    void rollback_if_open();
    void settle(bool committed);
    static int on_commit(void* self, sqlite3* handle, const char* schema, int frames);

    sqlite3* handle_;
    std::filesystem::path path_;
    std::string label_;
    std::map<std::string, Statement, std::less<>> cache_;
    [[nodiscard]] Result<void> set_durability(Durability durability);

    std::optional<Durability> durability_;            // the synchronous mode last set; none: the file's default
    int depth_ = 0;                                   // open transactions, the outermost included
    Durability wanted_ = Durability::process_crash;   // the strongest any open part asked for
    bool abandoned_ = false;                          // an inner part was not committed
    bool deferring_sync_ = false;                     // between defer_log_sync() and stop_deferring_log_sync()
    bool sync_owed_ = false;                          // a power_loss commit since defer_log_sync()
    std::vector<std::function<void(bool)>> outcome_;  // on_outcome() callbacks of the open transaction
    std::unique_ptr<BackgroundCheckpoint> checkpoint_;
};

// The same wording without a connection (open failures, or a code from elsewhere).
// `system_errno` is the OS error behind an I/O failure, 0 when unknown.
[[nodiscard]] Error sqlite_error(int code, const std::filesystem::path& file, std::string_view label,
                                 std::string_view detail, int system_errno = 0);

}  // namespace aegis::store
