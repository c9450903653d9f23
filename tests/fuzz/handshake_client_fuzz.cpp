// The client side of the handshake (PROTOCOL.md §3.4) after start() with the test-vector inputs,
// against bytes from the network. Mode byte, then:
//   0: the rest is a ServerHello (or Alert); if accepted, the test-vector ServerFinish follows.
//   1: the test-vector ServerHello, then the rest as a raw ServerFinish (or Alert).
//   2: the test-vector ServerHello, then a ServerFinish whose result is the rest, sealed under
//      the vector handshake key so the result parser behind the AEAD is reached.
//   3: a ServerHello with the vector clear part and the rest as its proof, sealed likewise.
// Invariants: established() only after on_server_finish succeeded; an acceptance names role 1 or 2.

#include "fuzz_support.h"
#include "protocol/handshake.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

const crypto::SigningKey& client_identity() {
    static const crypto::SigningKey key = crypto::SigningKey::from_seed(filled<32>(0x01));
    return key;
}

void finish(protocol::ClientHandshake& client, ByteView server_finish) {
    auto accepted = client.on_server_finish(server_finish);
    check(accepted.ok() == client.established());
    if (accepted) {
        check(accepted->role == Role::agent || accepted->role == Role::backend);
        (void)client.take_keys();
        check(!client.established());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    InputCursor input(data, size);
    const std::uint8_t mode = input.byte() % 4;

    protocol::ClientOptions options;
    options.identity = &client_identity();
    options.requested_id = std::string(vectors::kRequestedId);
    options.server_name = std::string(vectors::kServerName);
    protocol::ClientHandshake client(std::move(options));
    protocol::EphemeralSecrets fixed;
    fixed.ephemeral_secret = filled<32>(0x03);
    fixed.random = filled<32>(0x04);
    check(client.start(vectors::kTimestamp, &fixed) == unhex(vectors::kClientHello));

    if (mode == 0 || mode == 3) {
        Bytes hello;
        if (mode == 0) {
            const ByteView rest = input.rest();
            hello.assign(rest.begin(), rest.end());
        } else {
            hello = unhex(vectors::kServerHello);
            hello.resize(66);  // the clear part: type, version, ephemeral key, random
            const Bytes sealed = sealed_message(0, vectors::kHsS2c, 0, vectors::kThA, input.rest());
            hello.insert(hello.end(), sealed.begin() + 1, sealed.end());
        }
        auto client_auth = client.on_server_hello(hello);
        check(!client.established());
        if (client_auth) {
            check(!client_auth->empty() && (*client_auth)[0] == 3);
            finish(client, unhex(vectors::kServerFinish));
        }
        return 0;
    }

    auto client_auth = client.on_server_hello(unhex(vectors::kServerHello));
    check(client_auth.ok() && *client_auth == unhex(vectors::kClientAuth));
    if (mode == 1) {
        finish(client, input.rest());
    } else {
        finish(client, sealed_message(4, vectors::kHsS2c, 1, vectors::kThC, input.rest()));
    }
    return 0;
}
