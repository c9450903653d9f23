#include "store/log_syncer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace aegis::store {

Result<std::unique_ptr<LogSyncer>> LogSyncer::start(const std::filesystem::path& log) {
    const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return make_error(ExitCode::failure, "cannot open {} to sync it: {}", log.string(), std::strerror(errno));
    return std::unique_ptr<LogSyncer>(new LogSyncer(fd, log));
}

LogSyncer::LogSyncer(int fd, std::filesystem::path log) : fd_(fd), log_(std::move(log)), thread_([this] { run(); }) {}

LogSyncer::~LogSyncer() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    ::close(fd_);
}

void LogSyncer::sync(Done done) {
    {
        const std::lock_guard lock(mutex_);
        waiting_.push_back(std::move(done));
    }
    wake_.notify_one();
}

void LogSyncer::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return !waiting_.empty() || stopping_; });
        if (waiting_.empty()) return;  // stopping, nothing left to sync
        auto batch = std::exchange(waiting_, {});
        lock.unlock();
        Result<void> synced;
        if (::fdatasync(fd_) != 0) {
            synced = make_error(ExitCode::failure, "cannot sync {}: {}", log_.string(), std::strerror(errno));
        }
        for (auto& done : batch) done(synced);
        lock.lock();
    }
}

}  // namespace aegis::store
