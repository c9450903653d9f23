#pragma once
// Someone waiting for an answer: a local client and the id of its request.

#include <memory>
#include <nlohmann/json.hpp>

#include "ipc/server.h"

namespace aegis::broker {

struct Waiter {
    std::weak_ptr<ipc::Peer> peer;
    nlohmann::json request_id;
};

}  // namespace aegis::broker
