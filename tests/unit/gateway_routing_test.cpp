// Routing decides who receives a channel from the identities' stored subscription sets and the
// authorized file as last read; a fake state store stands in for the SQLite file.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "channel/channel.h"
#include "gateway/routing.h"

namespace {

using aegis::crypto::PublicKey;
using aegis::gateway::AuthorizedIdentity;
using aegis::gateway::AuthorizedKeys;
using aegis::gateway::Routing;
namespace store = aegis::store;

PublicKey key_of(std::uint8_t seed) {
    PublicKey key{};
    key.fill(seed);
    return key;
}

// Subscription sets in memory; nothing else is asked of it here.
class FakeGatewayState final : public store::GatewayState {
public:
    struct Set {
        std::string id;
        std::vector<std::string> patterns;
    };
    std::map<PublicKey, Set> sets;

    void open_session(const PublicKey&, const std::string&, const store::GatewayToken& presented, std::uint64_t,
                      store::Completion<store::OpenedSession> done) override {
        done(store::OpenedSession{presented, false, 0, {}});
    }
    void session_closed(const PublicKey&, const std::string&, const store::GatewayToken&, std::uint64_t) override {}
    void save_subscriptions(const PublicKey& key, const std::string& id, const std::vector<std::string>& patterns,
                            store::Completion<void> done) override {
        sets[key] = Set{id, patterns};
        done(aegis::Result<void>{});
    }
    std::vector<store::Subscriber> subscribers(std::string_view channel) const override {
        std::vector<store::Subscriber> out;
        for (const auto& [key, set] : sets) {
            store::Subscriber subscriber{key, set.id, {}};
            for (const auto& pattern : set.patterns)
                if (aegis::channel::matches(pattern, channel)) subscriber.patterns.push_back(pattern);
            if (!subscriber.patterns.empty()) out.push_back(std::move(subscriber));
        }
        return out;
    }
    void commit(store::StateCommit, store::Completion<store::CommitOutcome> done) override {
        done(store::CommitOutcome{});
    }
    void read_after(const PublicKey&, std::uint64_t, std::size_t,
                    store::Completion<std::vector<store::StoredBatch>> done) override {
        done(std::vector<store::StoredBatch>{});
    }
    void expire(std::uint64_t, store::Completion<std::map<std::string, std::uint64_t>> done) override {
        done(std::map<std::string, std::uint64_t>{});
    }
    store::InboxTotals totals() const override { return {0, sets.size()}; }
    std::map<PublicKey, store::IdentitySummary> identities() const override { return {}; }
    void probe(store::Completion<void> done) override { done({}); }
};

AuthorizedIdentity identity(std::uint8_t seed, std::string id, aegis::Role role) {
    AuthorizedIdentity out;
    out.key = key_of(seed);
    out.id = std::move(id);
    out.role = role;
    return out;
}

}  // namespace

TEST_CASE("gateway routing: stored sets the present grant still allows, never back to the origin",
          "[gateway_routing]") {
    FakeGatewayState state;
    AuthorizedKeys authorized;
    (void)authorized.add(identity(1, "soc", aegis::Role::backend), "authorized");
    (void)authorized.add(identity(2, "host42", aegis::Role::agent), "authorized");
    (void)authorized.add(identity(3, "renamed", aegis::Role::backend), "authorized");
    auto narrowed = identity(4, "audit", aegis::Role::backend);
    narrowed.subscribe_narrowing = "agent.other.>";
    (void)authorized.add(narrowed, "authorized");
    state.sets[key_of(1)] = {"soc", {"agent.>"}};
    state.sets[key_of(2)] = {"host42", {"backend.host42.>", "agent.host42.>"}};  // an agent may not read agent.>
    state.sets[key_of(3)] = {"was-audit", {"agent.>"}};                          // its id changed since
    state.sets[key_of(4)] = {"audit", {"agent.>"}};                              // narrowed since it subscribed
    state.sets[key_of(5)] = {"gone", {"agent.>"}};                               // no longer authorized
    const Routing routing(state, authorized);

    CHECK(routing.recipients("agent.host42.logs", key_of(2)) == std::vector<PublicKey>{key_of(1)});
    CHECK(routing.recipients("agent.host42.logs", key_of(1)).empty());  // the origin is not its own recipient
    CHECK(routing.recipients("backend.host42.policies", key_of(1)) == std::vector<PublicKey>{key_of(2)});
    CHECK(routing.recipients("backend.other.policies", key_of(1)).empty());
}
