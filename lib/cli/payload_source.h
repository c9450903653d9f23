#pragma once
// Where aegis-send's payloads come from: one message (text, a file or all of a stream), or one
// per line or per NUL-terminated record of a stream, read as they come (never all at once).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/result.h"

namespace aegis::cli {

enum class Split { whole, lines, nul };

class PayloadSource {
public:
    // Reads from the descriptor `fd` (not owned); `limit` is the largest payload allowed.
    PayloadSource(int fd, Split split, std::size_t limit) : fd_(fd), split_(split), limit_(limit) {}

    // Called when no whole record is buffered and the input has nothing to read right now,
    // just before waiting for it: a writer flushes what it holds back (aegis-send -l sends
    // what it coalesced, so a line typed or tailed is not kept waiting for the next one).
    using BeforeWait = std::function<Result<void>()>;
    void before_wait(BeforeWait hook) { before_wait_ = std::move(hook); }

    // The next payload; nullopt at the end. A whole stream is one payload, even when empty.
    [[nodiscard]] Result<std::optional<Bytes>> next();

private:
    // Reads more into the buffer; false at the end of the input.
    [[nodiscard]] Result<bool> fill();
    // The size of all of the input not yet consumed, once it is over the limit: a regular file
    // says it; a stream is read to its end and counted, keeping nothing more.
    [[nodiscard]] std::uint64_t whole_size();

    int fd_;
    Split split_;
    std::size_t limit_;
    bool whole_done_ = false;
    bool ended_ = false;
    Bytes buffer_;
    std::size_t start_ = 0;  // consumed bytes at the front of buffer_
    BeforeWait before_wait_;
};

// -H KEY=VALUE
[[nodiscard]] Result<std::pair<std::string, std::string>> parse_header_option(std::string_view text);

}  // namespace aegis::cli
