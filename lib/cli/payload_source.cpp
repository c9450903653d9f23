#include "cli/payload_source.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace aegis::cli {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

[[nodiscard]] Error too_large(std::uint64_t size, std::size_t limit) {
    return make_error(ExitCode::bad_input, "payload of {} bytes is over the limit of {}", size, limit);
}

[[nodiscard]] Error too_large_record(std::size_t limit) {
    return make_error(ExitCode::bad_input, "a payload of more than {} bytes is over the limit", limit);
}

}  // namespace

std::uint64_t PayloadSource::whole_size() {
    std::uint64_t size = buffer_.size() - start_;
    struct stat info {};
    if (::fstat(fd_, &info) == 0 && S_ISREG(info.st_mode)) {
        const auto at = ::lseek(fd_, 0, SEEK_CUR);
        if (at >= 0 && info.st_size >= at) return size + static_cast<std::uint64_t>(info.st_size - at);
    }
    Bytes discard(kReadChunk);
    for (;;) {
        const auto got = ::read(fd_, discard.data(), discard.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        size += static_cast<std::uint64_t>(got);
    }
    return size;
}

Result<bool> PayloadSource::fill() {
    if (ended_) return false;
    if (start_ > 0 && start_ >= buffer_.size() / 2) {  // amortised O(1) per byte
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
    }
    if (before_wait_) {
        pollfd watch{fd_, POLLIN, 0};
        int ready = 0;
        do {
            ready = ::poll(&watch, 1, 0);
        } while (ready < 0 && errno == EINTR);
        if (ready == 0) {
            if (auto flushed = before_wait_(); !flushed) return flushed.take_error();
        }
    }
    const std::size_t had = buffer_.size();
    buffer_.resize(had + kReadChunk);
    ssize_t got = 0;
    do {
        got = ::read(fd_, buffer_.data() + had, kReadChunk);
    } while (got < 0 && errno == EINTR);
    buffer_.resize(had + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
    if (got < 0) {
        return make_error(ExitCode::bad_input, "cannot read the {}: {}", split_ == Split::whole ? "payload" : "input",
                          std::strerror(errno));
    }
    if (got == 0) ended_ = true;
    return got > 0;
}

Result<std::optional<Bytes>> PayloadSource::next() {
    if (split_ == Split::whole) {
        if (whole_done_) return std::optional<Bytes>();
        whole_done_ = true;
        for (;;) {
            if (buffer_.size() - start_ > limit_) return too_large(whole_size(), limit_);
            auto more = fill();
            if (!more) return more.take_error();
            if (!*more) break;
        }
        Bytes payload(buffer_.begin() + static_cast<std::ptrdiff_t>(start_), buffer_.end());
        if (payload.size() > limit_) return too_large(payload.size(), limit_);
        return std::optional<Bytes>(std::move(payload));
    }
    const auto delimiter = static_cast<std::uint8_t>(split_ == Split::lines ? '\n' : '\0');
    std::size_t searched = start_;  // no delimiter before this
    for (;;) {
        const auto begin = buffer_.begin() + static_cast<std::ptrdiff_t>(start_);
        const auto found = std::find(buffer_.begin() + static_cast<std::ptrdiff_t>(searched), buffer_.end(), delimiter);
        if (found != buffer_.end() || (ended_ && begin != buffer_.end())) {
            Bytes payload(begin, found);  // a last record may lack its delimiter
            start_ = static_cast<std::size_t>(found - buffer_.begin()) + (found != buffer_.end() ? 1 : 0);
            if (payload.size() > limit_) return too_large(payload.size(), limit_);
            return std::optional<Bytes>(std::move(payload));
        }
        if (ended_) return std::optional<Bytes>();
        if (buffer_.size() - start_ > limit_) return too_large_record(limit_);
        const std::size_t offset = buffer_.size() - start_;  // fill() may move the record to the front
        auto more = fill();
        if (!more) return more.take_error();
        searched = start_ + offset;
    }
}

Result<std::pair<std::string, std::string>> parse_header_option(std::string_view text) {
    const auto equals = text.find('=');
    if (equals == std::string_view::npos || equals == 0) {
        return make_error(ExitCode::usage, "-H needs KEY=VALUE, not '{}'", text);
    }
    return std::pair<std::string, std::string>(text.substr(0, equals), text.substr(equals + 1));
}

}  // namespace aegis::cli
