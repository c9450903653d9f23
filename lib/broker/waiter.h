#pragma once
// Someone waiting for an answer: a local client and the id of its request.

#include <memory>
#include <nlohmann/json.hpp>

#include "ipc/messages.h"
#include "ipc/server.h"

namespace aegis::broker {

struct Waiter {
    std::weak_ptr<ipc::Peer> peer;
    nlohmann::json request_id;
};

// The answer (or the error) to a waiter whose client is still connected.
inline void answer(const Waiter& waiter, const nlohmann::json& fields) {
    if (auto peer = waiter.peer.lock()) peer->send(ipc::ok_response(waiter.request_id, fields));
}
inline void fail(const Waiter& waiter, const ipc::WireError& error) {
    if (auto peer = waiter.peer.lock()) peer->send(ipc::error_response(waiter.request_id, error));
}

}  // namespace aegis::broker
