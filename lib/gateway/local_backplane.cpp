// The in-process backplane: every session is in this gateway's admission.
#include "gateway/admission.h"
#include "gateway/backplane.h"
#include "gateway/gateway_session.h"
#include "protocol/reason.h"

namespace aegis::gateway {

namespace {

class LocalBackplane final : public Backplane {
public:
    explicit LocalBackplane(Admission& sessions) : sessions_(sessions) {}

    void inbox_grew(const crypto::PublicKey& key) override {
        if (auto session = sessions_.session_of(key)) session->pump();
    }

    void session_replaced(const crypto::PublicKey& key, SessionHandle newer) override {
        if (auto older = sessions_.session_of(key); older && older->handle() != newer)
            older->close_with(protocol::Reason::replaced, "a newer session of this identity logged in");
    }

private:
    Admission& sessions_;
};

}  // namespace

std::unique_ptr<Backplane> make_local_backplane(Admission& sessions) {
    return std::make_unique<LocalBackplane>(sessions);
}

}  // namespace aegis::gateway
