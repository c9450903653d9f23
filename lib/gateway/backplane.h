#pragma once
// Cross-session routing behind one narrow interface (DESIGN.md §7). The in-process
// implementation serves one gateway; a store-backed or Redis backplane shared by several
// gateways is a second implementation of this class, not a change to the sessions.
// The gateway keeps each session's live subscription set here; what reaches whom is decided
// from the identities' stored sets (store/gateway_store.h), so route() is not on its path.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"

namespace aegis::gateway {

using SessionHandle = std::uint64_t;

// One signed batch as published: the bytes are relayed unchanged.
struct RoutedBatch {
    std::string_view channel;
    ByteView bytes;
    std::size_t messages = 0;
};

// Hands a routed batch to one attached session (which numbers and sends it).
using DeliverFn = std::function<void(const RoutedBatch& batch)>;

class Backplane {
public:
    virtual ~Backplane() = default;

    virtual void attach(SessionHandle session, DeliverFn deliver) = 0;
    virtual void detach(SessionHandle session) = 0;
    // Adds / removes patterns (already validated and allowed) for an attached session.
    virtual void subscribe(SessionHandle session, const std::vector<std::string>& patterns) = 0;
    virtual void unsubscribe(SessionHandle session, const std::vector<std::string>& patterns) = 0;
    [[nodiscard]] virtual std::vector<std::string> subscriptions(SessionHandle session) const = 0;
    // Delivers once to every attached session, other than `from`, with a pattern matching the
    // channel. Returns how many sessions it reached.
    virtual std::size_t route(const RoutedBatch& batch, SessionHandle from) = 0;
};

// Everything in this process's memory: routing only, nothing stored.
[[nodiscard]] std::unique_ptr<Backplane> make_local_backplane();

}  // namespace aegis::gateway
