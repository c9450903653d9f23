#pragma once
// Copies a WAL database's log back into the database file on a thread of its own. A checkpoint
// syncs the database file, which can take tens of milliseconds; done by the committing thread
// (SQLite's automatic checkpoint) it stalls every message that thread carries meanwhile.
// SQLite lets a checkpoint on a second connection run while the first one commits.

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "core/result.h"

struct sqlite3;

namespace aegis::store {

class BackgroundCheckpoint {
public:
    // Opens a second connection to `file` (which must already be in WAL mode) and its thread.
    [[nodiscard]] static Result<std::unique_ptr<BackgroundCheckpoint>> start(const std::filesystem::path& file);
    BackgroundCheckpoint(const BackgroundCheckpoint&) = delete;
    BackgroundCheckpoint& operator=(const BackgroundCheckpoint&) = delete;
    ~BackgroundCheckpoint();  // finishes a checkpoint under way, then stops

    // Any thread: the log has grown, copy it soon. Requests made during a checkpoint run one more.
    void request();

    // Checkpoints finished since start (for tests).
    [[nodiscard]] int completed() const;

private:
    explicit BackgroundCheckpoint(sqlite3* handle);
    void run();

    sqlite3* handle_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool wanted_ = false;
    bool stopping_ = false;
    int completed_ = 0;
    std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace aegis::store
