#include "cli/ack_tracker.h"

namespace aegis::cli {

std::optional<std::uint64_t> AckTracker::handled(std::uint64_t seq) {
    if (auto found = pending_.find(seq); found != pending_.end()) found->second = true;
    std::optional<std::uint64_t> position;
    while (!pending_.empty() && pending_.begin()->second) {
        position = pending_.begin()->first;
        pending_.erase(pending_.begin());
    }
    return position;
}

}  // namespace aegis::cli
