#pragma once
// Where aegis-send's payloads come from: one message (text, a file or all of a stream), or one
// per line or per NUL-terminated record of a stream, read as they come (never all at once).

#include <cstdio>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/result.h"

namespace aegis::cli {

enum class Split { whole, lines, nul };

class PayloadSource {
public:
    // Reads from `in` (not owned); `limit` is the largest payload allowed.
    PayloadSource(std::FILE* in, Split split, std::size_t limit) : in_(in), split_(split), limit_(limit) {}
    // The next payload; nullopt at the end. A whole stream is one payload, even when empty.
    [[nodiscard]] Result<std::optional<Bytes>> next();

private:
    std::FILE* in_;
    Split split_;
    std::size_t limit_;
    bool whole_done_ = false;
};

// -H KEY=VALUE
[[nodiscard]] Result<std::pair<std::string, std::string>> parse_header_option(std::string_view text);

}  // namespace aegis::cli
