#include "store/background_checkpoint.h"

#include <sqlite3.h>

namespace aegis::store {

Result<std::unique_ptr<BackgroundCheckpoint>> BackgroundCheckpoint::start(const std::filesystem::path& file) {
    sqlite3* handle = nullptr;
    const int code = sqlite3_open_v2(file.c_str(), &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (code != SQLITE_OK) {
        const std::string detail = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(code);
        sqlite3_close(handle);
        return make_error(ExitCode::failure, "cannot open {} to checkpoint it: {}", file.string(), detail);
    }
    // This connection never commits; its own automatic checkpoint stays off. A checkpoint syncs
    // the log before copying it and the database file after, in either synchronous mode but OFF.
    sqlite3_wal_autocheckpoint(handle, 0);
    if (const int set = sqlite3_exec(handle, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
        set != SQLITE_OK) {
        const std::string detail = sqlite3_errmsg(handle);
        sqlite3_close(handle);
        return make_error(ExitCode::failure, "cannot open {} to checkpoint it: {}", file.string(), detail);
    }
    return std::unique_ptr<BackgroundCheckpoint>(new BackgroundCheckpoint(handle));
}

BackgroundCheckpoint::BackgroundCheckpoint(sqlite3* handle) : handle_(handle), thread_([this] { run(); }) {}

BackgroundCheckpoint::~BackgroundCheckpoint() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    sqlite3_close(handle_);
}

void BackgroundCheckpoint::request() {
    {
        const std::lock_guard lock(mutex_);
        if (wanted_) return;
        wanted_ = true;
    }
    wake_.notify_one();
}

int BackgroundCheckpoint::completed() const {
    const std::lock_guard lock(mutex_);
    return completed_;
}

void BackgroundCheckpoint::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return wanted_ || stopping_; });
        if (stopping_) return;
        wanted_ = false;
        lock.unlock();
        // PASSIVE never waits for the writer or readers: it copies what it can. A failure (BUSY
        // while another checkpoint runs, an I/O error) leaves the log as it was; the next request
        // tries again, and the committing connection checkpoints itself past its bound.
        const int code = sqlite3_wal_checkpoint_v2(handle_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        lock.lock();
        if (code == SQLITE_OK) ++completed_;
    }
}

}  // namespace aegis::store
