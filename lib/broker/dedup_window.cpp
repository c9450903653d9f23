#include "broker/dedup_window.h"

namespace aegis::broker {

bool DedupWindow::first_sight(const protocol::MessageId& id) {
    if (!seen_.insert(id).second) return false;
    order_.push_back(id);
    if (order_.size() > capacity_) {
        seen_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

}  // namespace aegis::broker
