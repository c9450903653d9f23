#include "gateway/admission.h"

#include <fmt/format.h>

#include "gateway/gateway_session.h"
#include "protocol/reason.h"

namespace aegis::gateway {

Admission::Admission(std::size_t max_sessions, GatewayMetrics& counters)
    : max_sessions_(max_sessions), counters_(counters) {}

void Admission::accepted(std::shared_ptr<GatewaySession> session) {
    const auto handle = session->handle();
    connections_[handle] = Connection{std::move(session), false};
    counters_.connections = connections_.size();
}

Result<void> Admission::admit(const crypto::PublicKey& key) const {
    const bool replaces = holder_.count(key) != 0;
    if (!replaces && counters_.sessions >= max_sessions_)
        return protocol::protocol_error(protocol::Reason::busy, fmt::format("{} sessions open", counters_.sessions));
    return {};
}

void Admission::established(const std::shared_ptr<GatewaySession>& session) {
    holder_[session->identity().key] = session->handle();
    if (const auto found = connections_.find(session->handle()); found != connections_.end())
        found->second.established = true;
    ++counters_.sessions;
    ++counters_.handshakes_ok;
}

bool Admission::closed(const GatewaySession& session) {
    bool held = false;
    if (const auto mine = holder_.find(session.identity().key);
        mine != holder_.end() && mine->second == session.handle()) {
        holder_.erase(mine);
        held = true;
    }
    if (const auto found = connections_.find(session.handle()); found != connections_.end()) {
        if (found->second.established && counters_.sessions > 0) --counters_.sessions;
        connections_.erase(found);  // the caller holds its own reference while it returns
    }
    counters_.connections = connections_.size();
    return held;
}

std::shared_ptr<GatewaySession> Admission::session_of(const crypto::PublicKey& key) const {
    const auto handle = holder_.find(key);
    if (handle == holder_.end()) return nullptr;
    const auto found = connections_.find(handle->second);
    return found == connections_.end() ? nullptr : found->second.session;
}

std::vector<std::shared_ptr<GatewaySession>> Admission::connections() const {
    std::vector<std::shared_ptr<GatewaySession>> out;
    out.reserve(connections_.size());
    for (const auto& [handle, connection] : connections_) out.push_back(connection.session);
    return out;
}

}  // namespace aegis::gateway
