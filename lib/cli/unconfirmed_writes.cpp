#include "cli/unconfirmed_writes.h"

#include <fmt/format.h>

namespace aegis::cli {

namespace {

// More ids than this would not fit a log line anyone reads; the range still bounds them.
constexpr std::size_t kListedIds = 16;

}  // namespace

void UnconfirmedWrites::confirmed(std::uint64_t position) {
    writes_.erase(writes_.begin(), writes_.upper_bound(position));
}

std::string UnconfirmedWrites::describe() const {
    if (writes_.empty()) return "no message";
    const auto first = writes_.begin()->first;
    const auto last = writes_.rbegin()->first;
    std::string text = writes_.size() == 1 ? "1 message" : fmt::format("{} messages", writes_.size());
    text += first == last ? fmt::format(" (cursor_seq {}", first) : fmt::format(" (cursor_seq {}-{}", first, last);
    if (writes_.size() <= kListedIds) {
        text += writes_.size() == 1 ? ", id" : ", ids";
        for (const auto& [seq, id] : writes_) text += " " + id;
    }
    return text + ")";
}

}  // namespace aegis::cli
