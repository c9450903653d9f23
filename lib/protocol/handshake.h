#pragma once
// The mutually authenticated handshake of PROTOCOL.md §3, as pure code: bytes in, bytes out,
// the clock passed in. X25519 ephemerals give forward secrecy; each side signs the transcript
// hash with its Ed25519 identity; the client identity travels only encrypted.
//
//   client                                   server
//   ClientHello  (1) ------------------------>
//               <------------------------ (2) ServerHello {server identity, signature}
//   ClientAuth   (3) ------------------------>  {client identity, id, signature}
//               <------------------------ (4) ServerFinish {accept | refusal}
//   (Alert (5) replaces (2) when the server refuses the ClientHello itself.)

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "core/role.h"
#include "crypto/primitives.h"
#include "crypto/secret.h"
#include "protocol/reason.h"

namespace aegis::protocol {

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::uint64_t kDefaultClockSkewMs = 120'000;
// No handshake message is longer; a transport may cap its reads at this until the handshake is done.
inline constexpr std::size_t kMaxHandshakeMessageBytes = 2048;
inline constexpr std::size_t kMaxServerNameBytes = 1024;

enum class HandshakeType : std::uint8_t {
    client_hello = 1,
    server_hello = 2,
    client_auth = 3,
    server_finish = 4,
    alert = 5,
};

using SessionId = std::array<std::uint8_t, 16>;
using SessionToken = std::array<std::uint8_t, 32>;
using HandshakeRandom = std::array<std::uint8_t, 32>;

// The per-direction traffic keys a finished handshake yields.
struct SessionKeys {
    crypto::SymmetricKey send;
    crypto::SymmetricKey receive;
    crypto::Hash transcript_hash{};  // identifies the session (e.g. for channel binding in logs)
};

// What the server grants in ServerFinish.
struct Accepted {
    SessionId session_id{};
    SessionToken session_token{};    // presented on reconnect to resume (0 = fresh session)
    std::uint64_t resume_point = 0;  // last delivery sequence the server knows the client has
    std::string assigned_id;         // the id the gateway's authorized file gives this identity
    Role role = Role::agent;
    // The answer to a probe (PROTOCOL.md §3.1): the identity would be accepted; no session was
    // opened, so the session id, token and resume point are zero and there are no traffic keys.
    bool probe = false;
};

// Fixed randomness for test vectors; a real handshake leaves it unset and draws fresh values.
struct EphemeralSecrets {
    std::array<std::uint8_t, 32> ephemeral_secret{};
    HandshakeRandom random{};
};

struct ClientOptions {
    const crypto::SigningKey* identity = nullptr;
    // The gateway keys the client accepts (several while the gateway rolls its key over); empty
    // accepts any key and leaves the decision to the caller (trust on first use), who reads
    // server_key() after on_server_hello.
    std::vector<crypto::PublicKey> pinned_server_keys;
    std::string requested_id;     // optional; the gateway's authorized file decides
    std::string server_name;      // host[:port][/path] of the URL, bound into the transcript
    SessionToken resume_token{};  // all zero for a fresh session
    // An operator CA's certificate of the identity (PROTOCOL.md §2.1), sent in ClientAuth; empty: none.
    Bytes certificate;
    // Ask the server for its certificate (ClientHello options bit 0): the caller trusts the
    // gateway by CA and judges server_certificate() after on_server_hello.
    bool want_server_certificate = false;
    // The software version reported to a gateway that takes the extended ClientAuth (ClientHello
    // options bit 1): at most kMaxSoftwareBytes of printable ASCII; empty: none.
    std::string software;
    // Ask the gateway to check this identity and answer without opening a session (aegis-connect
    // --check). A gateway that does not take the extended ClientAuth is never sent a ClientAuth:
    // on_server_hello fails instead, as a login would replace this identity's live session.
    bool probe = false;
};

class ClientHandshake {
public:
    explicit ClientHandshake(ClientOptions options);
    ~ClientHandshake();
    ClientHandshake(ClientHandshake&&) noexcept;
    ClientHandshake& operator=(ClientHandshake&&) noexcept;

    // Message 1. Options that cannot be sent (no identity, an id over 255 bytes, a server name
    // over kMaxServerNameBytes) or a second call give empty bytes and fail the handshake.
    [[nodiscard]] Bytes start(std::uint64_t now_ms, const EphemeralSecrets* fixed = nullptr);
    // Message 2 in, message 3 out. A server key that is not the pinned one is refused here,
    // before the client reveals its identity (Reason::server_key_mismatch). An Alert gives the
    // server's reason.
    [[nodiscard]] Result<Bytes> on_server_hello(ByteView message);
    // Message 4 in: the grant, or the server's typed refusal as an Error.
    [[nodiscard]] Result<Accepted> on_server_finish(ByteView message);

    [[nodiscard]] const crypto::PublicKey& server_key() const { return server_key_; }
    // The certificate the server sent in ServerHello (only when asked); empty: none.
    [[nodiscard]] const Bytes& server_certificate() const { return server_certificate_; }
    // After on_server_hello: the gateway echoed options bit 1 (it takes the extended ClientAuth).
    [[nodiscard]] bool server_extended() const { return server_extended_; }
    [[nodiscard]] const crypto::Hash& transcript_hash() const;
    // True once on_server_finish accepted and until take_keys().
    [[nodiscard]] bool established() const;
    // The traffic keys, once. Called before established() (or twice) it gives fresh random keys
    // that match nothing, so traffic fails closed instead of running under a known key.
    [[nodiscard]] SessionKeys take_keys();

private:
    [[nodiscard]] bool offers_extension() const { return !options_.software.empty() || options_.probe; }

    struct State;
    ClientOptions options_;
    crypto::PublicKey server_key_{};
    Bytes server_certificate_;
    bool server_extended_ = false;
    std::unique_ptr<State> state_;
};

// Remembers recent ClientHello randoms so a recorded hello cannot be replayed within the
// clock-skew window (older ones are refused as stale anyway). Bounded in memory.
class ReplayCache {
public:
    explicit ReplayCache(std::uint64_t window_ms = 2 * kDefaultClockSkewMs, std::size_t max_entries = 200'000);
    ~ReplayCache();
    // True the first time a random is seen within the window; false for a replay (or when
    // full of entries that have not yet expired, which fails closed).
    [[nodiscard]] bool remember(const HandshakeRandom& random, std::uint64_t now_ms);
    // True when no new random fits until old ones expire (the server then answers `busy`).
    [[nodiscard]] bool full() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct ServerOptions {
    const crypto::SigningKey* identity = nullptr;
    std::uint64_t max_clock_skew_ms = kDefaultClockSkewMs;
    // The server's certificate (PROTOCOL.md §2.1), sent in ServerHello to a client that asks; empty: none.
    Bytes certificate;
};

// ClientHello options (an optional trailing u8): bit 0 asks for the server's certificate; bit 1
// offers the extended ClientAuth (flags and software version), taken when ServerHello echoes it.
inline constexpr std::uint8_t kWantServerCertificate = 0x01;
inline constexpr std::uint8_t kExtendedAuth = 0x02;
// The extended ClientAuth's flags: bit 0 is a probe (check the identity, open nothing).
inline constexpr std::uint8_t kAuthProbe = 0x01;
inline constexpr std::size_t kMaxSoftwareBytes = 64;

// Empty when `software` may be reported (at most kMaxSoftwareBytes, printable ASCII), else why not.
[[nodiscard]] std::string software_problem(std::string_view software);

// The client as the server learns it from message 3, signature verified.
struct ClientClaim {
    crypto::PublicKey key{};
    std::string requested_id;
    SessionToken resume_token{};
    // The certificate the client sent, as bytes (the gateway decodes and judges it); empty: none.
    Bytes certificate;
    // From an extended ClientAuth only: the software version it reported (empty: none), and
    // whether it is a probe (answer with answer_probe(), never accept()).
    std::string software;
    bool probe = false;
};

// Longest certificate a ClientAuth may carry (identity::kMaxCertificateSize).
inline constexpr std::size_t kMaxCertificateBytes = 749;

class ServerHandshake {
public:
    ServerHandshake(ServerOptions options, ReplayCache& replay_cache);
    ~ServerHandshake();
    ServerHandshake(ServerHandshake&&) noexcept;

    // Message 1 in, message 2 out. On refusal (malformed, unsupported version, stale, replayed,
    // busy) the Error carries the reason and refuse(reason_of(error), ...) gives the Alert to send.
    [[nodiscard]] Result<Bytes> on_client_hello(ByteView message, std::uint64_t now_ms,
                                                const EphemeralSecrets* fixed = nullptr);
    // Message 3 in: the client's identity claim with its signature verified. The caller decides
    // whether the key is authorized, then answers with accept() or refuse().
    [[nodiscard]] Result<ClientClaim> on_client_auth(ByteView message);
    // Message 4, accepting. Called out of order (or with an assigned id over 255 bytes) it gives
    // refuse(Reason::internal) instead, so the client learns of the failure.
    [[nodiscard]] Bytes accept(const Accepted& grant);
    // Message 4 answering a probe: the identity would be accepted as `assigned_id` and `role`;
    // nothing is opened and no traffic keys exist. Out of order (or for a claim that is not a
    // probe) it gives refuse(Reason::internal) instead.
    [[nodiscard]] Bytes answer_probe(std::string_view assigned_id, Role role);
    // Message 4 refusing (encrypted) once keys exist, or a plaintext Alert before that.
    [[nodiscard]] Bytes refuse(Reason reason, std::string_view detail);

    [[nodiscard]] const crypto::Hash& transcript_hash() const;
    // True once accept() was called and until take_keys().
    [[nodiscard]] bool established() const;
    // The traffic keys, once; before accept() (or twice), random keys that match nothing.
    [[nodiscard]] SessionKeys take_keys();

private:
    struct State;
    ServerOptions options_;
    ReplayCache& replay_cache_;
    std::unique_ptr<State> state_;
};

}  // namespace aegis::protocol
