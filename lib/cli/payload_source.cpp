#include "cli/payload_source.h"

#include <cerrno>
#include <cstring>

namespace aegis::cli {

namespace {

[[nodiscard]] Error too_large(std::size_t size, std::size_t limit) {
    return make_error(ExitCode::bad_input, "payload of {} bytes is over the limit of {}", size, limit);
}

}  // namespace

Result<std::optional<Bytes>> PayloadSource::next() {
    if (split_ == Split::whole) {
        if (whole_done_) return std::optional<Bytes>();
        whole_done_ = true;
        Bytes payload;
        std::uint8_t chunk[65536];
        for (;;) {
            const std::size_t got = std::fread(chunk, 1, sizeof chunk, in_);
            payload.insert(payload.end(), chunk, chunk + got);
            if (payload.size() > limit_) return too_large(payload.size(), limit_);
            if (got < sizeof chunk) break;
        }
        if (std::ferror(in_))
            return make_error(ExitCode::bad_input, "cannot read the payload: {}", std::strerror(errno));
        return std::optional<Bytes>(std::move(payload));
    }
    const int delimiter = split_ == Split::lines ? '\n' : '\0';
    char* line = nullptr;
    std::size_t capacity = 0;
    const ssize_t got = ::getdelim(&line, &capacity, delimiter, in_);
    if (got < 0) {
        std::free(line);
        if (std::ferror(in_)) return make_error(ExitCode::bad_input, "cannot read the input: {}", std::strerror(errno));
        return std::optional<Bytes>();
    }
    auto length = static_cast<std::size_t>(got);
    if (length > 0 && line[length - 1] == static_cast<char>(delimiter)) --length;
    Bytes payload(reinterpret_cast<std::uint8_t*>(line), reinterpret_cast<std::uint8_t*>(line) + length);
    std::free(line);
    if (payload.size() > limit_) return too_large(payload.size(), limit_);
    return std::optional<Bytes>(std::move(payload));
}

Result<std::pair<std::string, std::string>> parse_header_option(std::string_view text) {
    const auto equals = text.find('=');
    if (equals == std::string_view::npos || equals == 0) {
        return make_error(ExitCode::usage, "-H needs KEY=VALUE, not '{}'", text);
    }
    return std::pair<std::string, std::string>(text.substr(0, equals), text.substr(equals + 1));
}

}  // namespace aegis::cli
