#pragma once
// Who receives a channel: the identities whose stored subscription set matches it and whose
// present grant (the authorized file as last read) still allows a matching pattern.

#include <string_view>
#include <vector>

#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"
#include "store/gateway_state.h"

namespace aegis::gateway {

class Routing {
public:
    Routing(const store::GatewayState& state, const AuthorizedKeys& authorized);

    // Every identity that receives a batch published to `channel` by `origin`, other than the origin.
    [[nodiscard]] std::vector<crypto::PublicKey> recipients(std::string_view channel,
                                                            const crypto::PublicKey& origin) const;

private:
    const store::GatewayState& state_;
    const AuthorizedKeys& authorized_;
};

}  // namespace aegis::gateway
