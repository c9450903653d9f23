// The in-process backplane: a map of attached sessions and their patterns. Routing is a scan
// of the sessions, which is cheap at the scale of one gateway's memory.
#include <algorithm>
#include <map>

#include "channel/channel.h"
#include "gateway/backplane.h"

namespace aegis::gateway {

namespace {

class LocalBackplane final : public Backplane {
public:
    void attach(SessionHandle session, DeliverFn deliver) override {
        sessions_[session] = Attached{std::move(deliver), {}};
    }

    void detach(SessionHandle session) override { sessions_.erase(session); }

    void subscribe(SessionHandle session, const std::vector<std::string>& patterns) override {
        const auto found = sessions_.find(session);
        if (found == sessions_.end()) return;
        auto& mine = found->second.patterns;
        for (const auto& pattern : patterns) {
            if (std::find(mine.begin(), mine.end(), pattern) == mine.end()) mine.push_back(pattern);
        }
    }

    void unsubscribe(SessionHandle session, const std::vector<std::string>& patterns) override {
        const auto found = sessions_.find(session);
        if (found == sessions_.end()) return;
        auto& mine = found->second.patterns;
        std::erase_if(mine, [&](const std::string& p) {
            return std::find(patterns.begin(), patterns.end(), p) != patterns.end();
        });
    }

    std::vector<std::string> subscriptions(SessionHandle session) const override {
        const auto found = sessions_.find(session);
        return found == sessions_.end() ? std::vector<std::string>{} : found->second.patterns;
    }

    std::size_t route(const RoutedBatch& batch, SessionHandle from) override {
        // Collect first: a delivery may close a session (send queue over its bound), which detaches it.
        std::vector<DeliverFn> targets;
        for (const auto& [handle, attached] : sessions_) {
            if (handle == from) continue;
            const bool wanted = std::any_of(attached.patterns.begin(), attached.patterns.end(),
                                            [&](const std::string& p) { return channel::matches(p, batch.channel); });
            if (wanted) targets.push_back(attached.deliver);
        }
        for (const auto& deliver : targets) deliver(batch);
        return targets.size();
    }

private:
    struct Attached {
        DeliverFn deliver;
        std::vector<std::string> patterns;
    };
    std::map<SessionHandle, Attached> sessions_;
};

}  // namespace

std::unique_ptr<Backplane> make_local_backplane() {
    return std::make_unique<LocalBackplane>();
}

}  // namespace aegis::gateway
