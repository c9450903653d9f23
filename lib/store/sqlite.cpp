#include "store/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "store/background_checkpoint.h"
#include "store/private_files.h"

namespace aegis::store {

namespace {

constexpr int kBusyTimeoutMs = 5000;
// What an operator does with a file Aegis refuses to use: it is never reset behind their back.
constexpr const char* kMoveAside = "move it aside with its -wal and -shm files (the next start makes an empty one)";

[[nodiscard]] int open_flags(OpenMode mode) {
    switch (mode) {
        case OpenMode::read_write_create: return SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        case OpenMode::read_write: return SQLITE_OPEN_READWRITE;
        case OpenMode::read_only: return SQLITE_OPEN_READONLY;
    }
    return SQLITE_OPEN_READONLY;
}

// SQLite keeps memory statistics under one global mutex, locked at every allocation, unless
// told otherwise before it initializes (the first open). Nothing here reads them.
void configure_sqlite_once() {
    static const bool configured = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
    (void)configured;  // SQLITE_MISUSE when something initialized SQLite first: statistics stay on
}

}  // namespace

Error sqlite_error(int code, const std::filesystem::path& file, std::string_view label, std::string_view detail,
                   int system_errno) {
    const auto name = file.string();
    switch (code & 0xff) {
        case SQLITE_FULL: return make_error(ExitCode::failure, "cannot write {}: disk full", name);
        case SQLITE_IOERR:
            // SQLite reports only ENOSPC as SQLITE_FULL; a quota is the same thing to an operator.
            if (system_errno == ENOSPC || system_errno == EDQUOT) {
                return make_error(ExitCode::failure, "cannot write {}: disk full", name);
            }
            if (system_errno != 0) {
                return make_error(ExitCode::failure, "cannot use {}: I/O error ({})", name,
                                  std::strerror(system_errno));
            }
            return make_error(ExitCode::failure, "cannot use {}: I/O error", name);
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
            return make_error(ExitCode::bad_input, "{} is not an {} or is corrupt; {}", name, label, kMoveAside);
        case SQLITE_CANTOPEN:
            return make_error(ExitCode::failure, "cannot open {}: {} (does the directory exist and is it writable?)",
                              name, detail);
        case SQLITE_READONLY:
        case SQLITE_PERM:
            return make_error(ExitCode::failure, "cannot write {}: the file or its directory is read-only", name);
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return make_error(ExitCode::failure, "{} is locked by another process", name);
        case SQLITE_NOMEM: return make_error(ExitCode::failure, "out of memory using {}", name);
        default: return make_error(ExitCode::failure, "{}: {}", name, detail);
    }
}

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)),
      database_(other.database_),
      bind_status_(std::move(other.bind_status_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(statement_);
        statement_ = std::exchange(other.statement_, nullptr);
        database_ = other.database_;
        bind_status_ = std::move(other.bind_status_);
    }
    return *this;
}

Statement::~Statement() {
    sqlite3_finalize(statement_);
}

namespace {

void note_bind(Result<void>& status, int code, const Database* database) {
    if (code != SQLITE_OK && status.ok()) status = database->error(code);
}

}  // namespace

Statement& Statement::bind(int index, std::int64_t value) {
    note_bind(bind_status_, sqlite3_bind_int64(statement_, index, value), database_);
    return *this;
}

Statement& Statement::bind(int index, std::uint64_t value) {
    return bind(index, static_cast<std::int64_t>(value));
}

Statement& Statement::bind(int index, std::string_view text) {
    note_bind(bind_status_,
              sqlite3_bind_text64(statement_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
              database_);
    return *this;
}

Statement& Statement::bind(int index, ByteView blob) {
    // An empty span may have a null data pointer, which SQLite would store as NULL.
    const int code = blob.empty() ? sqlite3_bind_zeroblob(statement_, index, 0)
                                  : sqlite3_bind_blob64(statement_, index, blob.data(), blob.size(), SQLITE_TRANSIENT);
    note_bind(bind_status_, code, database_);
    return *this;
}

Statement& Statement::bind_null(int index) {
    note_bind(bind_status_, sqlite3_bind_null(statement_, index), database_);
    return *this;
}

Result<bool> Statement::step() {
    if (!bind_status_) return bind_status_.error();
    const int code = sqlite3_step(statement_);
    if (code == SQLITE_ROW) return true;
    if (code == SQLITE_DONE) return false;
    auto error = database_->error(code);
    sqlite3_reset(statement_);
    return error;
}

Result<void> Statement::run() {
    for (;;) {
        auto row = step();
        if (!row) return row.take_error();
        if (!*row) return {};
    }
}

void Statement::reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
    bind_status_ = {};
}

std::int64_t Statement::column_int(int column) const {
    return sqlite3_column_int64(statement_, column);
}

std::uint64_t Statement::column_uint(int column) const {
    return static_cast<std::uint64_t>(column_int(column));
}

std::string Statement::column_text(int column) const {
    const auto* text = sqlite3_column_text(statement_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

ByteView Statement::column_blob_view(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement_, column));
    if (data == nullptr) return {};
    return {data, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column))};
}

Bytes Statement::column_blob(int column) const {
    const auto view = column_blob_view(column);
    return Bytes(view.begin(), view.end());
}

bool Statement::column_is_null(int column) const {
    return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

// ---- Transaction ----

Transaction::~Transaction() {
    if (database_ == nullptr) return;
    if (database_->depth_ > 1) {
        --database_->depth_;
        database_->abandoned_ = true;
        return;
    }
    database_->depth_ = 0;
    database_->rollback_if_open();
}

Result<void> Transaction::commit() {
    auto* database = std::exchange(database_, nullptr);
    if (database == nullptr) return make_error(ExitCode::failure, "transaction already finished");
    if (database->depth_ > 1) {
        --database->depth_;
        return {};
    }
    database->depth_ = 0;
    if (std::exchange(database->abandoned_, false)) {
        database->rollback_if_open();
        return make_error(ExitCode::failure, "{}: a step of the transaction failed; nothing was written",
                          database->path().string());
    }
    auto done = database->exec_cached("COMMIT");
    if (!done) {
        database->rollback_if_open();  // a failed COMMIT may leave the transaction open
        return done;
    }
    // A part that needed power_loss joined a relaxed transaction: its frames are in the log but
    // not yet on disk, so the log is synced as synchronous=FULL would have at this COMMIT.
    if (database->wanted_ == Durability::power_loss && database->durability_ != Durability::power_loss) {
        if (database->deferring_sync_) {
            database->sync_owed_ = true;
        } else {
            done = database->sync_log();
        }
    }
    // A commit that did not reach the disk is reported failed: its writer takes it back in memory
    // (rows still in the file are written again, idempotently, when the work is done again).
    database->settle(done.ok());
    return done;
}

// ---- Database ----

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& file, OpenMode mode, std::string label) {
    configure_sqlite_once();
    // Made 0600 here, so SQLite (which would use 0644 less the umask) gives its log the same.
    if (mode == OpenMode::read_write_create) {
        if (auto created = create_private_file(file); !created) return created.take_error();
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {
        if (auto private_file = check_private_file(file.string() + suffix); !private_file)
            return private_file.take_error();
    }
    sqlite3* handle = nullptr;
    const int code = sqlite3_open_v2(file.c_str(), &handle, open_flags(mode) | SQLITE_OPEN_NOMUTEX, nullptr);
    if (code != SQLITE_OK) {
        const std::string detail = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(code);
        sqlite3_close(handle);
        return sqlite_error(code, file, label, detail);
    }
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, kBusyTimeoutMs);
    if (mode != OpenMode::read_only && sqlite3_db_readonly(handle, "main") == 1) {
        sqlite3_close(handle);
        return sqlite_error(SQLITE_READONLY, file, label, "read-only");
    }
    return std::unique_ptr<Database>(new Database(handle, file, std::move(label)));
}

Database::Database(sqlite3* handle, std::filesystem::path path, std::string label)
    : handle_(handle), path_(std::move(path)), label_(std::move(label)) {}

Database::~Database() {
    checkpoint_.reset();  // its connection closes first: the last one to close checkpoints the rest
    cache_.clear();       // statements must be finalized before the connection closes
    sqlite3_close(handle_);
}

Error Database::error(int code) const {
    return sqlite_error(code, path_, label_, sqlite3_errmsg(handle_), sqlite3_system_errno(handle_));
}

Result<void> Database::exec(std::string_view sql) {
    const std::string text(sql);
    const int code = sqlite3_exec(handle_, text.c_str(), nullptr, nullptr, nullptr);
    if (code != SQLITE_OK) return error(code);
    return {};
}

Result<void> Database::exec_cached(const std::string& sql) {
    auto statement = cached(sql);
    if (!statement) return statement.take_error();
    return (*statement)->run();
}

Result<Statement> Database::prepare(std::string_view sql) {
    sqlite3_stmt* statement = nullptr;
    const int code = sqlite3_prepare_v3(handle_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                        &statement, nullptr);
    if (code != SQLITE_OK) {
        sqlite3_finalize(statement);
        return error(code);
    }
    return Statement(statement, this);
}

Result<StatementLease> Database::cached(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        auto statement = prepare(sql);
        if (!statement) return statement.take_error();
        it = cache_.emplace(sql, std::move(*statement)).first;
    }
    return StatementLease(&it->second);
}

Result<std::int64_t> Database::query_int(std::string_view sql) {
    auto statement = prepare(sql);
    if (!statement) return statement.take_error();
    auto row = statement->step();
    if (!row) return row.take_error();
    if (!*row) return std::int64_t{0};
    return statement->column_int(0);
}

Result<void> Database::set_durability(Durability durability) {
    if (durability_ == durability) return {};
    // FULL syncs the log at every commit; NORMAL only at checkpoints. Set outside transactions only.
    auto set =
        exec_cached(durability == Durability::power_loss ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    if (set) durability_ = durability;
    return set;
}

Result<Transaction> Database::begin(Durability durability) {
    if (depth_ > 0) {
        ++depth_;
        if (durability == Durability::power_loss) wanted_ = durability;
        return Transaction(this);
    }
    // Deferring: committed without a sync, which its writer's sync_log() does (see Transaction::commit).
    const auto mode = deferring_sync_ ? Durability::process_crash : durability;
    if (auto set = set_durability(mode); !set) return set.take_error();
    if (auto started = exec_cached("BEGIN IMMEDIATE"); !started) return started.take_error();
    depth_ = 1;
    wanted_ = durability;
    abandoned_ = false;
    return Transaction(this);
}

void Database::on_outcome(std::function<void(bool committed)> then) {
    if (depth_ == 0) {
        then(true);
        return;
    }
    outcome_.push_back(std::move(then));
}

void Database::settle(bool committed) {
    auto callbacks = std::move(outcome_);
    outcome_.clear();
    for (auto it = callbacks.rbegin(); it != callbacks.rend(); ++it) (*it)(committed);
}

Result<void> Database::use_write_ahead_log() {
    auto mode = prepare("PRAGMA journal_mode = WAL");
    if (!mode) return mode.take_error();
    auto row = mode->step();
    if (!row) return row.take_error();
    if (!*row || mode->column_text(0) != "wal") {
        return make_error(ExitCode::failure, "cannot use {}: the file system does not support write-ahead logging",
                          path_.string());
    }
    mode->reset();
    if (auto sync = exec("PRAGMA synchronous = FULL"); !sync) return sync.take_error();
    if (auto limit = exec(fmt::format("PRAGMA journal_size_limit = {}", kLogSizeLimitBytes)); !limit)
        return limit.take_error();
    if (checkpoint_) return {};
    auto started = BackgroundCheckpoint::start(path_);
    if (!started) return started.take_error();
    checkpoint_ = std::move(*started);
    // Replaces SQLite's automatic checkpoint, which is a hook of the same kind.
    sqlite3_wal_hook(handle_, &Database::on_commit, this);
    return {};
}

int Database::background_checkpoints() const {
    return checkpoint_ ? checkpoint_->completed() : 0;
}

int Database::on_commit(void* self, sqlite3* handle, const char* schema, int frames) {
    auto* database = static_cast<Database*>(self);
    if (frames >= kForegroundCheckpointFrames) {
        // Failure leaves the log as it is; the next commit tries again.
        sqlite3_wal_checkpoint_v2(handle, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames >= kBackgroundCheckpointFrames) {
        database->checkpoint_->request();
    }
    return SQLITE_OK;
}

Result<void> Database::check_integrity() {
    auto check = prepare("PRAGMA quick_check(1)");
    if (!check) return check.take_error();
    auto row = check->step();
    if (!row) return row.take_error();  // SQLITE_CORRUPT itself: the wording above
    std::string verdict = *row ? check->column_text(0) : "no answer";
    if (verdict == "ok") return {};
    // One line: SQLite may start the first problem with "*** in database main ***" and a newline.
    if (const auto header = verdict.find("***\n"); header != std::string::npos) verdict.erase(0, header + 4);
    std::replace(verdict.begin(), verdict.end(), '\n', ' ');
    return make_error(ExitCode::bad_input, "{} is corrupt ({}); {}", path_.string(), verdict, kMoveAside);
}

// Not a checkpoint: a passive one syncs the log only when it can copy frames back, and a
// reader whose snapshot predates them keeps it from copying any (SQLite's walCheckpoint).
Result<void> Database::sync_log() {
    sqlite3_file* log = nullptr;
    const int found = sqlite3_file_control(handle_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log);
    if (found != SQLITE_OK || log == nullptr || log->pMethods == nullptr) {
        return sqlite_error(SQLITE_IOERR_FSYNC, path_, label_, "the write-ahead log is not open");
    }
    if (const int synced = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL); synced != SQLITE_OK) {
        return sqlite_error(synced, path_, label_, "cannot sync the write-ahead log", errno);
    }
    return {};
}

// Ends the outermost transaction without its changes: the on_outcome callbacks hear false.
void Database::rollback_if_open() {
    if (sqlite3_get_autocommit(handle_) == 0) sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
    settle(false);
}

std::int64_t Database::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(handle_);
}

int Database::changes() const {
    return sqlite3_changes(handle_);
}

}  // namespace aegis::store
