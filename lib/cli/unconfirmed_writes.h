#pragma once
// A durable subscriber writes a message, then acknowledges it: between the two, and until the
// broker confirms the acknowledgement is committed, a crash of the broker replays it. These
// are the messages in that window, so the subscriber can name exactly what may come again.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace aegis::cli {

class UnconfirmedWrites {
public:
    // The message at this cursor position has been written (or its command has finished).
    void written(std::uint64_t seq, std::string id) { writes_.insert_or_assign(seq, std::move(id)); }
    // The broker committed the cursor up to `position`: nothing up to it can come again.
    void confirmed(std::uint64_t position);
    [[nodiscard]] bool empty() const { return writes_.empty(); }
    [[nodiscard]] std::size_t size() const { return writes_.size(); }
    // "2 messages (cursor_seq 7-9, ids <hex> <hex>)": every id up to a screenful, else the range only.
    [[nodiscard]] std::string describe() const;

private:
    std::map<std::uint64_t, std::string> writes_;  // cursor position -> message id (hex)
};

}  // namespace aegis::cli
