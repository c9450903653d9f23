// The server side of the handshake (PROTOCOL.md §3.4) against bytes from the network.
// Mode byte, then:
//   0: the rest is a ClientHello; if accepted, the test-vector ClientAuth follows.
//   1: the test-vector ClientHello (fixed server secrets), then the rest as a raw ClientAuth.
//   2: the test-vector ClientHello, then a ClientAuth whose proof is the rest, sealed under the
//      vector handshake key so the proof parser behind the AEAD is reached.
// Invariants: a step that fails leaves the handshake unestablished; accept() after a verified
// ClientAuth establishes it.

#include "fuzz_support.h"
#include "protocol/handshake.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

const crypto::SigningKey& server_identity() {
    static const crypto::SigningKey key = crypto::SigningKey::from_seed(filled<32>(0x02));
    return key;
}

void finish(protocol::ServerHandshake& server, const Result<protocol::ClientClaim>& claim) {
    if (!claim) {
        check(!server.established());
        (void)server.refuse(protocol::Reason::malformed, "fuzz");
        return;
    }
    protocol::Accepted grant;
    grant.session_id = filled<16>(0x07);
    grant.session_token = filled<32>(0x08);
    grant.assigned_id = claim->requested_id;
    const Bytes finish_message = server.accept(grant);
    check(!finish_message.empty());
    check(server.established());
    (void)server.take_keys();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    InputCursor input(data, size);
    const std::uint8_t mode = input.byte() % 3;

    protocol::ReplayCache replay_cache;  // fresh per input: the fixed hello is no replay
    protocol::ServerHandshake server({&server_identity(), protocol::kDefaultClockSkewMs}, replay_cache);
    protocol::EphemeralSecrets fixed;
    fixed.ephemeral_secret = filled<32>(0x05);
    fixed.random = filled<32>(0x06);

    if (mode == 0) {
        const ByteView hello = input.rest();
        auto server_hello = server.on_client_hello(hello, vectors::kTimestamp, &fixed);
        if (!server_hello) {
            check(!server.established());
            (void)server.refuse(protocol::reason_of(server_hello.error()), "fuzz");
            return 0;
        }
        check(!server_hello->empty() && (*server_hello)[0] == 2);
        finish(server, server.on_client_auth(unhex(vectors::kClientAuth)));
        return 0;
    }

    auto server_hello = server.on_client_hello(unhex(vectors::kClientHello), vectors::kTimestamp, &fixed);
    check(server_hello.ok() && *server_hello == unhex(vectors::kServerHello));
    if (mode == 1) {
        finish(server, server.on_client_auth(input.rest()));
    } else {
        const Bytes auth = sealed_message(3, vectors::kHsC2s, 0, vectors::kThB, input.rest());
        finish(server, server.on_client_auth(auth));
    }
    return 0;
}
