#pragma once
// Durable subscriptions acknowledge a cursor position: everything up to S has been handled.
// With several commands running at once they finish out of order; this keeps the position at
// the end of the handled prefix.

#include <cstdint>
#include <map>
#include <optional>

namespace aegis::cli {

class AckTracker {
public:
    // A message with this cursor position was received (positions increase).
    void received(std::uint64_t seq) { pending_.emplace(seq, false); }
    // It has been handled; returns the new position to acknowledge, when it moved.
    [[nodiscard]] std::optional<std::uint64_t> handled(std::uint64_t seq);

private:
    std::map<std::uint64_t, bool> pending_;  // position -> handled
};

}  // namespace aegis::cli
