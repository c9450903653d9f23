#pragma once
// What one session's work means for another session, behind one narrow interface (DESIGN.md §7):
// a batch stored for an identity wakes the session holding it, and a newer session of an identity
// closes the older one. In one gateway both are calls into this process; with several gateways
// sharing a store they travel between gateways, as a second implementation of this class.
// Each session keeps its own live subscription set; routing is decided from the identities'
// stored sets (store/gateway_state.h).

#include <cstdint>
#include <memory>

#include "crypto/primitives.h"

namespace aegis::gateway {

using SessionHandle = std::uint64_t;

class Admission;

class Backplane {
public:
    virtual ~Backplane() = default;

    // Batches were stored in the identity's inbox: the session holding it sends them.
    virtual void inbox_grew(const crypto::PublicKey& key) = 0;
    // Session `newer` of the identity finished its handshake: any other session of it closes (replaced).
    // `newer` 0: the newer session is on another gateway sharing the store.
    virtual void session_replaced(const crypto::PublicKey& key, SessionHandle newer) = 0;
};

// The sessions of this process only: who holds which identity is `sessions`.
[[nodiscard]] std::unique_ptr<Backplane> make_local_backplane(Admission& sessions);

}  // namespace aegis::gateway
