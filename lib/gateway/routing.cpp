#include "gateway/routing.h"

#include <algorithm>

#include "channel/channel.h"

namespace aegis::gateway {

Routing::Routing(const store::GatewayState& state, const AuthorizedKeys& authorized)
    : state_(state), authorized_(authorized) {}

std::vector<crypto::PublicKey> Routing::recipients(std::string_view channel, const crypto::PublicKey& origin) const {
    std::vector<crypto::PublicKey> out;
    for (const auto& subscriber : state_.subscribers(channel)) {
        if (subscriber.key == origin) continue;
        const auto* now = authorized_.find(subscriber.key);
        if (now == nullptr || now->id != subscriber.id) continue;  // revoked or renamed: routes nothing
        const channel::AccessPolicy policy(now->role, now->id, now->publish_narrowing, now->subscribe_narrowing);
        if (std::any_of(subscriber.patterns.begin(), subscriber.patterns.end(),
                        [&](const std::string& p) { return policy.may_subscribe(p); }))
            out.push_back(subscriber.key);
    }
    return out;
}

}  // namespace aegis::gateway
