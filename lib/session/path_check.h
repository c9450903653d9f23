#pragma once
// The path to a gateway, step by step (aegis-connect --check): one attempt of ClientSession's
// own transport and handshake, stopped as soon as the gateway has accepted or refused this
// identity. It writes nothing: no queue, no known_backends, no session token kept.
//
// Steps, in order (each only when it applies): resolve, tcp, proxy, tls, upgrade, handshake
// (the gateway proved its key), clock, key (pinned, or certified by a trusted CA), certificate
// (the gateway certificate's validity, with --backend-ca), auth (this identity accepted: asked as
// a probe, so the gateway opens, resumes and replaces no session; PROTOCOL.md §3.1).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "session/client_session.h"

namespace aegis::session {

struct PathStep {
    std::string name;
    bool ok = true;
    std::chrono::microseconds elapsed{0};
    std::string detail;
};

struct PathReport {
    std::vector<PathStep> steps;  // those that ran; the last one failed when `failure` is set
    // The first failure, its exit code chosen by the step: failure (resolve to upgrade: the
    // gateway was not reached), refused (the gateway's refusal, the key, the certificate, the
    // clock), timeout, bad_input.
    std::optional<Error> failure;
    std::string failed_step;
    std::string fix;  // what to do about the failure, in one sentence
};

// Runs on an io_context of its own and returns when done, within about `timeout`.
// `accept_unpinned`: with no pinned key and no CA, the key presented is taken for this check
// (as trust on first use would, recording nothing); otherwise it is refused.
[[nodiscard]] PathReport check_path(ClientSessionOptions options, std::chrono::milliseconds timeout,
                                    bool accept_unpinned = false);

// What to do about a failure of `step` (one sentence, no trailing period); empty when unsure.
[[nodiscard]] std::string fix_for(std::string_view step, const Error& error);

}  // namespace aegis::session
