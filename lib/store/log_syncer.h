#pragma once
// Syncs a WAL database's log on a thread of its own, for a writer that commits without syncing
// (Database::defer_log_sync) and must not wait for the device meanwhile: the gateway's event
// loop reads, routes and delivers while the batches it stored are flushed. One fdatasync covers
// every commit written before it started, so requests made during a sync share the next one.
//
// It syncs through a descriptor of its own on the log file (fdatasync flushes the file, whoever
// wrote it), so the writer's SQLite connection is never touched from this thread. Frames a
// checkpoint has already copied are safe either way: a checkpoint syncs the log before it copies
// and the database file after.

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/result.h"

namespace aegis::store {

class LogSyncer {
public:
    using Done = std::function<void(Result<void>)>;

    // Opens `log` (the "-wal" file, which must exist) and starts the thread.
    [[nodiscard]] static Result<std::unique_ptr<LogSyncer>> start(const std::filesystem::path& log);
    LogSyncer(const LogSyncer&) = delete;
    LogSyncer& operator=(const LogSyncer&) = delete;
    ~LogSyncer();  // syncs what was asked for and calls back, then stops

    // Any thread: `done` runs on the syncer's thread once everything committed before this call
    // is on disk (or the sync failed).
    void sync(Done done);

private:
    LogSyncer(int fd, std::filesystem::path log);
    void run();

    int fd_;
    std::filesystem::path log_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Done> waiting_;
    bool stopping_ = false;
    std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace aegis::store
