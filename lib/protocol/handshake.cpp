#include "protocol/handshake.h"

#include <algorithm>
#include <deque>
#include <set>
#include <string_view>
#include <utility>

#include "core/wire.h"

namespace aegis::protocol {

namespace {

constexpr std::string_view kTranscriptLabel = "aegis/1 transcript";
constexpr std::string_view kServerSignatureLabel = "aegis/1 server signature";
constexpr std::string_view kClientSignatureLabel = "aegis/1 client signature";
constexpr std::string_view kHandshakeLabel = "aegis/1 handshake";
constexpr std::string_view kHandshakeS2cLabel = "aegis/1 hs s2c";
constexpr std::string_view kHandshakeC2sLabel = "aegis/1 hs c2s";
constexpr std::string_view kTrafficLabel = "aegis/1 traffic";
constexpr std::string_view kTrafficC2sLabel = "aegis/1 c2s";
constexpr std::string_view kTrafficS2cLabel = "aegis/1 s2c";

constexpr std::size_t kMaxIdBytes = 255;
// ServerHello: type, version, ephemeral key, random; then the sealed proof.
constexpr std::size_t kServerHelloClearBytes = 1 + 1 + crypto::kPublicKeySize + 32;
constexpr std::size_t kServerProofBytes = crypto::kPublicKeySize + crypto::kSignatureSize;
// ClientAuth plaintext without the requested id.
constexpr std::size_t kClientProofFixedBytes =
    crypto::kPublicKeySize + 1 + sizeof(SessionToken) + crypto::kSignatureSize;

constexpr std::uint64_t kServerHelloCounter = 0;
constexpr std::uint64_t kClientAuthCounter = 0;
constexpr std::uint64_t kServerFinishCounter = 1;

enum class FinishStatus : std::uint8_t { accept = 0, refuse = 1, probe_passed = 2 };

// H("aegis/1 transcript" || u32 len || part || u32 len || part ...), readable at any point.
class Transcript {
public:
    Transcript() { hash_.update(as_bytes(kTranscriptLabel)); }
    void add(ByteView part) {
        WireWriter prefix;
        prefix.u32(static_cast<std::uint32_t>(part.size()));
        hash_.update(prefix.bytes());
        hash_.update(part);
    }
    [[nodiscard]] crypto::Hash snapshot() const { return hash_.peek(); }

private:
    crypto::Blake2b hash_;
};

Bytes concat(std::string_view label, std::initializer_list<ByteView> parts) {
    WireWriter out;
    out.raw(as_bytes(label));
    for (const auto part : parts) out.raw(part);
    return out.take();
}

Bytes server_signed_bytes(const crypto::Hash& th_a) {
    return concat(kServerSignatureLabel, {th_a});
}

// The extended ClientAuth (§3.1) signs its flags and software version too; `extension` is
// nullptr for the original form.
struct AuthExtension {
    std::uint8_t flags = 0;
    std::string software;
};

Bytes client_signed_bytes(const crypto::Hash& th_b, const crypto::PublicKey& key, std::string_view requested_id,
                          const SessionToken& token, const AuthExtension* extension) {
    WireWriter id;
    id.text8(requested_id);
    WireWriter extended;
    if (extension != nullptr) {
        extended.u8(extension->flags);
        extended.text8(extension->software);
    }
    return concat(kClientSignatureLabel, {th_b, key, id.bytes(), token, extended.bytes()});
}

struct HandshakeKeys {
    crypto::SymmetricKey secret;  // hs, kept until the traffic keys are derived
    crypto::SymmetricKey s2c;
    crypto::SymmetricKey c2s;
};

HandshakeKeys derive_handshake_keys(const crypto::SymmetricKey& dh, const crypto::Hash& th_a) {
    auto hs = crypto::kdf(dh.view(), kHandshakeLabel, th_a);
    auto s2c = crypto::kdf(hs.view(), kHandshakeS2cLabel, {});
    auto c2s = crypto::kdf(hs.view(), kHandshakeC2sLabel, {});
    return {std::move(hs), std::move(s2c), std::move(c2s)};
}

struct TrafficKeys {
    crypto::SymmetricKey c2s;
    crypto::SymmetricKey s2c;
};

TrafficKeys derive_traffic_keys(const crypto::SymmetricKey& hs, const crypto::Hash& th_c) {
    const auto app = crypto::kdf(hs.view(), kTrafficLabel, th_c);
    return {crypto::kdf(app.view(), kTrafficC2sLabel, {}), crypto::kdf(app.view(), kTrafficS2cLabel, {})};
}

void wipe(crypto::SymmetricKey& key) {
    key = crypto::SymmetricKey{};
}

crypto::SymmetricKey random_key() {
    crypto::SymmetricKey key;
    crypto::random_bytes(key.mutable_view());
    return key;
}

SessionKeys unusable_keys() {
    return SessionKeys{random_key(), random_key(), crypto::Hash{}};
}

Error malformed(std::string_view what) {
    return protocol_error(Reason::malformed, what);
}

Error out_of_order(std::string_view call) {
    return make_error(ExitCode::failure, "handshake used out of order: {} at this point", call);
}

Bytes encode_alert(Reason reason, std::string_view text) {
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::alert));
    out.u16(static_cast<std::uint16_t>(reason));
    out.text16(clip_reason_text(text));
    return out.take();
}

bool is_alert(ByteView message) {
    return !message.empty() && message[0] == static_cast<std::uint8_t>(HandshakeType::alert);
}

Error refusal_error(Reason reason, std::string_view text) {
    // A server that passes its own protocol_error message as the text would repeat describe().
    const auto repeated = std::string(describe(reason)) + ": ";
    if (text.starts_with(repeated)) text.remove_prefix(repeated.size());
    return protocol_error(
        reason, text.empty() ? std::string("refused by the server") : "refused by the server: " + std::string(text));
}

// The server's reason from an Alert (unauthenticated: it can only end a handshake, never grant one).
Error read_alert(ByteView message) {
    WireReader in(message);
    std::uint8_t type = 0;
    std::uint16_t reason = 0;
    std::string text;
    if (!in.u8(type) || !in.u16(reason) || !in.text16(text) || !in.at_end() || text.size() > kMaxReasonTextBytes ||
        reason == static_cast<std::uint16_t>(Reason::none)) {
        return malformed("unreadable Alert from the server");
    }
    return refusal_error(static_cast<Reason>(reason), text);
}

}  // namespace

std::string software_problem(std::string_view software) {
    if (software.size() > kMaxSoftwareBytes)
        return fmt::format("software version of {} bytes, over the limit of {}", software.size(), kMaxSoftwareBytes);
    for (const char c : software)
        if (c < 0x20 || c > 0x7e) return "software version is not printable ASCII";
    return {};
}

// ---------------------------------------------------------------------------------------------
// Client

namespace {
enum class ClientStep { init, hello_sent, auth_sent, established, failed };
}  // namespace

struct ClientHandshake::State {
    ClientStep step = ClientStep::init;
    std::optional<Error> failure;
    Transcript transcript;
    std::optional<crypto::EphemeralKey> ephemeral;
    crypto::SymmetricKey finish_key;  // k_hs_s2c, to open ServerFinish
    crypto::SymmetricKey send;
    crypto::SymmetricKey receive;
    crypto::Hash th_c{};
    bool keys_taken = false;

    Error fail(Error error) {
        step = ClientStep::failed;
        ephemeral.reset();
        wipe(finish_key);
        wipe(send);
        wipe(receive);
        failure = error;
        return error;
    }
    // A call out of order ends the handshake; a call after a failure repeats that failure.
    Error misuse(std::string_view call) {
        if (step == ClientStep::failed && failure) return *failure;
        return fail(out_of_order(call));
    }
};

ClientHandshake::ClientHandshake(ClientOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {}
ClientHandshake::~ClientHandshake() = default;
ClientHandshake::ClientHandshake(ClientHandshake&&) noexcept = default;
ClientHandshake& ClientHandshake::operator=(ClientHandshake&&) noexcept = default;

Bytes ClientHandshake::start(std::uint64_t now_ms, const EphemeralSecrets* fixed) {
    if (!state_) return {};
    auto& st = *state_;
    if (st.step != ClientStep::init) {
        (void)st.misuse("start()");
        return {};
    }
    if (options_.identity == nullptr) {
        (void)st.fail(make_error(ExitCode::failure, "handshake needs a client identity"));
        return {};
    }
    if (options_.requested_id.size() > kMaxIdBytes) {
        (void)st.fail(make_error(ExitCode::bad_input, "requested id is longer than {} bytes", kMaxIdBytes));
        return {};
    }
    if (options_.server_name.size() > kMaxServerNameBytes) {
        (void)st.fail(make_error(ExitCode::bad_input, "server name is longer than {} bytes", kMaxServerNameBytes));
        return {};
    }
    if (options_.certificate.size() > kMaxCertificateBytes) {
        (void)st.fail(make_error(ExitCode::bad_input, "certificate is longer than {} bytes", kMaxCertificateBytes));
        return {};
    }
    if (const auto problem = software_problem(options_.software); !problem.empty()) {
        (void)st.fail(make_error(ExitCode::bad_input, "{}", problem));
        return {};
    }
    HandshakeRandom random{};
    if (fixed != nullptr) {
        st.ephemeral = crypto::EphemeralKey::from_secret(fixed->ephemeral_secret);
        random = fixed->random;
    } else {
        st.ephemeral = crypto::EphemeralKey::generate();
        crypto::random_bytes(random);
    }
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::client_hello));
    out.u8(kProtocolVersion);
    out.raw(st.ephemeral->public_key());
    out.raw(random);
    out.u64(now_ms);
    out.text16(options_.server_name);
    // Optional and last: a ClientHello without it is the original form (§3.1).
    std::uint8_t hello_options = 0;
    if (options_.want_server_certificate) hello_options |= kWantServerCertificate;
    if (offers_extension()) hello_options |= kExtendedAuth;
    if (hello_options != 0) out.u8(hello_options);
    st.transcript.add(out.bytes());
    st.step = ClientStep::hello_sent;
    return out.take();
}

Result<Bytes> ClientHandshake::on_server_hello(ByteView message) {
    if (!state_) return out_of_order("on_server_hello() on a moved-from handshake");
    auto& st = *state_;
    if (st.step != ClientStep::hello_sent) return st.misuse("on_server_hello()");
    if (message.size() > kMaxHandshakeMessageBytes) return st.fail(malformed("ServerHello too long"));
    if (is_alert(message)) return st.fail(read_alert(message));

    WireReader in(message);
    std::uint8_t type = 0;
    std::uint8_t version = 0;
    crypto::PublicKey server_ephemeral{};
    HandshakeRandom server_random{};
    ByteView sealed;
    if (!in.u8(type) || type != static_cast<std::uint8_t>(HandshakeType::server_hello)) {
        return st.fail(malformed("expected a ServerHello"));
    }
    if (!in.u8(version)) return st.fail(malformed("ServerHello truncated"));
    if (version != kProtocolVersion) {
        return st.fail(
            protocol_error(Reason::unsupported_version,
                           fmt::format("server answered with version {}, expected {}", version, kProtocolVersion)));
    }
    // Longer only when this client asked for the server's certificate, or offered the extension (§3.1).
    const std::size_t longest = kServerProofBytes + crypto::kAeadTagSize +
                                (options_.want_server_certificate ? 2 + kMaxCertificateBytes : 0) +
                                (offers_extension() ? 1 : 0);
    if (!in.raw(server_ephemeral) || !in.raw(server_random) || !in.bytes32(sealed) || !in.at_end() ||
        sealed.size() < kServerProofBytes + crypto::kAeadTagSize || sealed.size() > longest) {
        return st.fail(malformed("ServerHello has the wrong length"));
    }

    st.transcript.add(message.first(kServerHelloClearBytes));
    const auto th_a = st.transcript.snapshot();
    auto dh = st.ephemeral->agree(server_ephemeral);
    st.ephemeral.reset();  // forward secrecy: the ephemeral secret is gone once used
    if (!dh) return st.fail(malformed("server ephemeral key is a low-order point"));
    auto keys = derive_handshake_keys(*dh, th_a);
    wipe(*dh);

    const auto proof = crypto::aead_open(keys.s2c, kServerHelloCounter, th_a, sealed);
    if (!proof) return st.fail(protocol_error(Reason::bad_signature, "ServerHello does not decrypt"));
    // The accepted options byte, when the server echoes the extension, ends the proof: it is the
    // last byte exactly when the rest is that byte alone, or a u16-len certificate and that byte.
    ByteView proof_bytes(*proof);
    const auto after_signature = proof_bytes.size() - std::min(proof_bytes.size(), kServerProofBytes);
    const auto certificate_then_byte = [&] {
        if (after_signature < 4) return false;
        const auto length = (std::size_t{proof_bytes[kServerProofBytes]} << 8) | proof_bytes[kServerProofBytes + 1];
        return after_signature == 2 + length + 1;
    };
    server_extended_ = false;
    if (offers_extension() && (after_signature == 1 || certificate_then_byte())) {
        const std::uint8_t accepted = proof_bytes.back();
        const std::uint8_t offered =
            kExtendedAuth | (options_.want_server_certificate ? kWantServerCertificate : std::uint8_t{0});
        if ((accepted & kExtendedAuth) == 0 || (accepted & ~offered) != 0)
            return st.fail(
                malformed(fmt::format("ServerHello accepts options {:#04x}, offered {:#04x}", accepted, offered)));
        server_extended_ = true;
        proof_bytes = proof_bytes.first(proof_bytes.size() - 1);
    }
    WireReader proof_in(proof_bytes);
    crypto::PublicKey server_key{};
    crypto::Signature signature{};
    ByteView server_certificate;
    if (!proof_in.raw(server_key) || !proof_in.raw(signature) ||
        (!proof_in.at_end() && (!proof_in.bytes16(server_certificate) || server_certificate.empty())) ||
        !proof_in.at_end()) {
        return st.fail(malformed("ServerHello proof has the wrong length"));
    }
    if (!crypto::verify(server_key, server_signed_bytes(th_a), signature)) {
        return st.fail(protocol_error(Reason::bad_signature, "server signature does not verify"));
    }
    server_key_ = server_key;
    server_certificate_.assign(server_certificate.begin(), server_certificate.end());
    // Checked before message 3 exists: a wrong server never sees the client's identity.
    if (!options_.pinned_server_keys.empty() &&
        std::none_of(
            options_.pinned_server_keys.begin(), options_.pinned_server_keys.end(),
            [&](const crypto::PublicKey& pinned) { return crypto::constant_time_equal(pinned, server_key); })) {
        std::vector<std::string> pinned;
        for (const auto& key : options_.pinned_server_keys) pinned.push_back(crypto::fingerprint(key));
        return st.fail(
            protocol_error(Reason::server_key_mismatch,
                           fmt::format("server presented {}, pinned key{} {}", crypto::fingerprint(server_key),
                                       pinned.size() == 1 ? " is" : "s are", fmt::join(pinned, ", "))));
    }
    // A gateway that does not take the extension would read a probe as a login, and a login
    // replaces the identity's live session: no ClientAuth at all then.
    if (options_.probe && !server_extended_) {
        return st.fail(protocol_error(Reason::unsupported_version,
                                      "the gateway does not take a probe (it did not accept ClientHello options bit "
                                      "1, PROTOCOL.md §3.1); the login was not tried, as it would replace a live "
                                      "session of this identity"));
    }
    st.transcript.add(message.subspan(kServerHelloClearBytes));
    const auto th_b = st.transcript.snapshot();

    const auto& identity = *options_.identity;
    std::optional<AuthExtension> extension;
    if (server_extended_) extension = AuthExtension{options_.probe ? kAuthProbe : std::uint8_t{0}, options_.software};
    const auto client_signature = identity.sign(client_signed_bytes(
        th_b, identity.public_key(), options_.requested_id, options_.resume_token, extension ? &*extension : nullptr));
    WireWriter plain;
    plain.raw(identity.public_key());
    plain.text8(options_.requested_id);
    plain.raw(options_.resume_token);
    if (extension) {
        plain.u8(extension->flags);
        plain.text8(extension->software);
    }
    plain.raw(client_signature);
    // Optional, after the signature: a ClientAuth without it is the original form (§3.1).
    if (!options_.certificate.empty()) plain.bytes16(options_.certificate);
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::client_auth));
    out.bytes32(crypto::aead_seal(keys.c2s, kClientAuthCounter, th_b, plain.bytes()));
    st.transcript.add(out.bytes());
    st.th_c = st.transcript.snapshot();

    auto traffic = derive_traffic_keys(keys.secret, st.th_c);
    st.send = std::move(traffic.c2s);
    st.receive = std::move(traffic.s2c);
    st.finish_key = std::move(keys.s2c);
    st.step = ClientStep::auth_sent;
    return out.take();
}

Result<Accepted> ClientHandshake::on_server_finish(ByteView message) {
    if (!state_) return out_of_order("on_server_finish() on a moved-from handshake");
    auto& st = *state_;
    if (st.step != ClientStep::auth_sent) return st.misuse("on_server_finish()");
    if (message.size() > kMaxHandshakeMessageBytes) return st.fail(malformed("ServerFinish too long"));
    if (is_alert(message)) return st.fail(read_alert(message));

    WireReader in(message);
    std::uint8_t type = 0;
    ByteView sealed;
    if (!in.u8(type) || type != static_cast<std::uint8_t>(HandshakeType::server_finish)) {
        return st.fail(malformed("expected a ServerFinish"));
    }
    if (!in.bytes32(sealed) || !in.at_end()) return st.fail(malformed("ServerFinish has the wrong length"));
    const auto plain = crypto::aead_open(st.finish_key, kServerFinishCounter, st.th_c, sealed);
    wipe(st.finish_key);
    if (!plain) return st.fail(protocol_error(Reason::bad_signature, "ServerFinish does not decrypt"));

    WireReader body(*plain);
    std::uint8_t status = 0;
    if (!body.u8(status)) return st.fail(malformed("ServerFinish is empty"));
    if (status == static_cast<std::uint8_t>(FinishStatus::refuse)) {
        std::uint16_t reason = 0;
        std::string text;
        if (!body.u16(reason) || !body.text16(text) || !body.at_end() || text.size() > kMaxReasonTextBytes ||
            reason == static_cast<std::uint16_t>(Reason::none)) {
            return st.fail(malformed("unreadable refusal in ServerFinish"));
        }
        return st.fail(refusal_error(static_cast<Reason>(reason), text));
    }
    const bool probed = options_.probe && server_extended_;
    // A probe is answered only with probe_passed or a refusal, a login never with probe_passed.
    const auto expected = probed ? FinishStatus::probe_passed : FinishStatus::accept;
    if (status != static_cast<std::uint8_t>(expected)) {
        return st.fail(
            malformed(fmt::format("unexpected ServerFinish status {} to a {}", status, probed ? "probe" : "login")));
    }
    Accepted grant;
    grant.probe = probed;
    std::uint8_t role = 0;
    if ((!probed && (!body.raw(grant.session_id) || !body.raw(grant.session_token) || !body.u64(grant.resume_point))) ||
        !body.text8(grant.assigned_id) || !body.u8(role) || !body.at_end()) {
        return st.fail(malformed("ServerFinish grant has the wrong length"));
    }
    if (role != static_cast<std::uint8_t>(Role::agent) && role != static_cast<std::uint8_t>(Role::backend)) {
        return st.fail(malformed(fmt::format("unknown role {} in ServerFinish", role)));
    }
    grant.role = static_cast<Role>(role);
    if (probed) {
        // Nothing to encrypt: the gateway opened no session and closes the connection.
        (void)st.fail(make_error(ExitCode::failure, "a probe opens no session"));
        return grant;
    }
    st.step = ClientStep::established;
    return grant;
}

const crypto::Hash& ClientHandshake::transcript_hash() const {
    static const crypto::Hash kNone{};
    return state_ ? state_->th_c : kNone;
}

bool ClientHandshake::established() const {
    return state_ && state_->step == ClientStep::established && !state_->keys_taken;
}

SessionKeys ClientHandshake::take_keys() {
    if (!established()) return unusable_keys();
    state_->keys_taken = true;
    return SessionKeys{std::move(state_->send), std::move(state_->receive), state_->th_c};
}

// ---------------------------------------------------------------------------------------------
// Replay cache

struct ReplayCache::Impl {
    std::uint64_t window_ms;
    std::size_t max_entries;
    // An ordered set: the randoms are chosen by the peer, so no hash table to flood.
    std::set<HandshakeRandom> seen;
    std::deque<std::pair<std::uint64_t, HandshakeRandom>> by_age;

    void expire(std::uint64_t now_ms) {
        while (!by_age.empty() && now_ms >= by_age.front().first && now_ms - by_age.front().first > window_ms) {
            seen.erase(by_age.front().second);
            by_age.pop_front();
        }
    }
};

ReplayCache::ReplayCache(std::uint64_t window_ms, std::size_t max_entries)
    : impl_(std::make_unique<Impl>(Impl{window_ms, max_entries, {}, {}})) {}
ReplayCache::~ReplayCache() = default;

bool ReplayCache::remember(const HandshakeRandom& random, std::uint64_t now_ms) {
    impl_->expire(now_ms);
    if (impl_->seen.contains(random)) return false;
    if (full()) return false;
    impl_->seen.insert(random);
    impl_->by_age.emplace_back(now_ms, random);
    return true;
}

bool ReplayCache::full() const {
    return impl_->seen.size() >= impl_->max_entries;
}

// ---------------------------------------------------------------------------------------------
// Server

namespace {
enum class ServerStep { init, hello_answered, auth_verified, finished, failed };
}  // namespace

struct ServerHandshake::State {
    ServerStep step = ServerStep::init;
    std::optional<Error> failure;
    Transcript transcript;
    crypto::SymmetricKey secret;      // hs
    crypto::SymmetricKey auth_key;    // k_hs_c2s, opens ClientAuth
    crypto::SymmetricKey finish_key;  // k_hs_s2c, seals ServerFinish (counter 1, once)
    bool finish_key_live = false;
    crypto::SymmetricKey send;
    crypto::SymmetricKey receive;
    crypto::Hash th_b{};
    crypto::Hash th_c{};
    bool have_th_c = false;
    bool keys_taken = false;
    std::uint8_t accepted_options = 0;  // echoed in ServerHello: the extended ClientAuth follows
    bool probe = false;                 // the ClientAuth was a probe

    // Keeps finish_key: a refusal after a failed ClientAuth is still sent encrypted.
    Error fail(Error error) {
        step = ServerStep::failed;
        wipe(secret);
        wipe(auth_key);
        wipe(send);
        wipe(receive);
        failure = error;
        return error;
    }
    Error misuse(std::string_view call) {
        if (step == ServerStep::failed && failure) return *failure;
        return fail(out_of_order(call));
    }
};

ServerHandshake::ServerHandshake(ServerOptions options, ReplayCache& replay_cache)
    : options_(options), replay_cache_(replay_cache), state_(std::make_unique<State>()) {}
ServerHandshake::~ServerHandshake() = default;
ServerHandshake::ServerHandshake(ServerHandshake&&) noexcept = default;

Result<Bytes> ServerHandshake::on_client_hello(ByteView message, std::uint64_t now_ms, const EphemeralSecrets* fixed) {
    if (!state_) return out_of_order("on_client_hello() on a moved-from handshake");
    auto& st = *state_;
    if (st.step != ServerStep::init) return st.misuse("on_client_hello()");
    if (options_.identity == nullptr) {
        return st.fail(make_error(ExitCode::failure, "handshake needs a server identity"));
    }
    if (message.size() > kMaxHandshakeMessageBytes) return st.fail(malformed("ClientHello too long"));

    WireReader in(message);
    std::uint8_t type = 0;
    std::uint8_t version = 0;
    crypto::PublicKey client_ephemeral{};
    HandshakeRandom client_random{};
    std::uint64_t timestamp_ms = 0;
    std::string server_name;
    if (!in.u8(type) || type != static_cast<std::uint8_t>(HandshakeType::client_hello)) {
        return st.fail(malformed("expected a ClientHello"));
    }
    if (!in.u8(version)) return st.fail(malformed("ClientHello truncated"));
    if (version != kProtocolVersion) {
        return st.fail(
            protocol_error(Reason::unsupported_version,
                           fmt::format("client speaks version {}, this server speaks {}", version, kProtocolVersion)));
    }
    std::uint8_t hello_options = 0;
    if (!in.raw(client_ephemeral) || !in.raw(client_random) || !in.u64(timestamp_ms) || !in.text16(server_name) ||
        (!in.at_end() && !in.u8(hello_options)) || !in.at_end() || server_name.size() > kMaxServerNameBytes) {
        return st.fail(malformed("ClientHello has the wrong length"));
    }
    const auto skew = options_.max_clock_skew_ms;
    if (timestamp_ms > now_ms && timestamp_ms - now_ms > skew) {
        return st.fail(protocol_error(
            Reason::stale_timestamp,
            fmt::format("client clock is {} ms ahead of the server's, tolerance {} ms", timestamp_ms - now_ms, skew)));
    }
    if (now_ms > timestamp_ms && now_ms - timestamp_ms > skew) {
        return st.fail(protocol_error(
            Reason::stale_timestamp,
            fmt::format("client clock is {} ms behind the server's, tolerance {} ms", now_ms - timestamp_ms, skew)));
    }
    if (!replay_cache_.remember(client_random, now_ms)) {
        if (replay_cache_.full()) return st.fail(protocol_error(Reason::busy, "too many handshakes in progress"));
        return st.fail(protocol_error(Reason::replayed, "this ClientHello was seen before"));
    }

    HandshakeRandom server_random{};
    std::optional<crypto::SymmetricKey> dh;
    crypto::PublicKey server_ephemeral{};
    {
        // Scoped so the ephemeral secret is wiped as soon as the shared secret exists. The secret
        // and the random come from one draw: a system call less per handshake.
        crypto::Secret<64> drawn;
        if (fixed == nullptr) crypto::random_bytes(drawn.mutable_view());
        auto ephemeral = crypto::EphemeralKey::from_secret(
            fixed != nullptr ? std::span<const std::uint8_t, 32>(fixed->ephemeral_secret) : drawn.view().first<32>());
        if (fixed != nullptr) {
            server_random = fixed->random;
        } else {
            const auto tail = drawn.view().last<32>();
            std::copy(tail.begin(), tail.end(), server_random.begin());
        }
        server_ephemeral = ephemeral.public_key();
        dh = ephemeral.agree(client_ephemeral);
    }
    if (!dh) return st.fail(malformed("client ephemeral key is a low-order point"));

    st.transcript.add(message);
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::server_hello));
    out.u8(kProtocolVersion);
    out.raw(server_ephemeral);
    out.raw(server_random);
    st.transcript.add(out.bytes());
    const auto th_a = st.transcript.snapshot();
    auto keys = derive_handshake_keys(*dh, th_a);
    wipe(*dh);

    const auto& identity = *options_.identity;
    WireWriter proof;
    proof.raw(identity.public_key());
    proof.raw(identity.sign(server_signed_bytes(th_a)));
    // Only to a client that asked: a client of the original form expects exactly 112 bytes.
    if ((hello_options & kWantServerCertificate) != 0 && !options_.certificate.empty() &&
        options_.certificate.size() <= kMaxCertificateBytes)
        proof.bytes16(options_.certificate);
    // Only to a client that offered the extension: it looks for this byte after the certificate.
    if ((hello_options & kExtendedAuth) != 0) {
        st.accepted_options = hello_options & (kExtendedAuth | kWantServerCertificate);
        proof.u8(st.accepted_options);
    }
    WireWriter sealed;
    sealed.bytes32(crypto::aead_seal(keys.s2c, kServerHelloCounter, th_a, proof.bytes()));
    st.transcript.add(sealed.bytes());
    st.th_b = st.transcript.snapshot();
    out.raw(sealed.bytes());

    st.secret = std::move(keys.secret);
    st.auth_key = std::move(keys.c2s);
    st.finish_key = std::move(keys.s2c);
    st.finish_key_live = true;
    st.step = ServerStep::hello_answered;
    return out.take();
}

Result<ClientClaim> ServerHandshake::on_client_auth(ByteView message) {
    if (!state_) return out_of_order("on_client_auth() on a moved-from handshake");
    auto& st = *state_;
    if (st.step != ServerStep::hello_answered) return st.misuse("on_client_auth()");
    if (message.size() > kMaxHandshakeMessageBytes) return st.fail(malformed("ClientAuth too long"));
    st.transcript.add(message);
    st.th_c = st.transcript.snapshot();
    st.have_th_c = true;

    WireReader in(message);
    std::uint8_t type = 0;
    ByteView sealed;
    if (!in.u8(type) || type != static_cast<std::uint8_t>(HandshakeType::client_auth)) {
        return st.fail(malformed("expected a ClientAuth"));
    }
    const bool extended = (st.accepted_options & kExtendedAuth) != 0;
    const std::size_t extension_bytes = extended ? 2 : 0;
    if (!in.bytes32(sealed) || !in.at_end() ||
        sealed.size() < kClientProofFixedBytes + extension_bytes + crypto::kAeadTagSize ||
        sealed.size() > kClientProofFixedBytes + kMaxIdBytes + 2 + kMaxCertificateBytes + crypto::kAeadTagSize +
                            (extended ? extension_bytes + kMaxSoftwareBytes : 0)) {
        return st.fail(malformed("ClientAuth has the wrong length"));
    }
    const auto plain = crypto::aead_open(st.auth_key, kClientAuthCounter, st.th_b, sealed);
    wipe(st.auth_key);
    if (!plain) return st.fail(protocol_error(Reason::bad_signature, "ClientAuth does not decrypt"));

    WireReader body(*plain);
    ClientClaim claim;
    crypto::Signature signature{};
    std::optional<AuthExtension> extension;
    if (!body.raw(claim.key) || !body.text8(claim.requested_id) || !body.raw(claim.resume_token)) {
        return st.fail(malformed("ClientAuth proof has the wrong length"));
    }
    if (extended) {
        extension.emplace();
        if (!body.u8(extension->flags) || !body.text8(extension->software))
            return st.fail(malformed("ClientAuth proof has the wrong length"));
        if ((extension->flags & ~kAuthProbe) != 0)
            return st.fail(malformed(fmt::format("unknown ClientAuth flags {:#04x}", extension->flags)));
        if (const auto problem = software_problem(extension->software); !problem.empty())
            return st.fail(malformed(problem));
        claim.software = extension->software;
        claim.probe = (extension->flags & kAuthProbe) != 0;
    }
    if (!body.raw(signature)) return st.fail(malformed("ClientAuth proof has the wrong length"));
    if (!body.at_end()) {
        ByteView certificate;
        if (!body.bytes16(certificate) || !body.at_end() || certificate.empty() ||
            certificate.size() > kMaxCertificateBytes)
            return st.fail(malformed("ClientAuth proof has the wrong length"));
        claim.certificate.assign(certificate.begin(), certificate.end());
    }
    if (!crypto::verify(claim.key,
                        client_signed_bytes(st.th_b, claim.key, claim.requested_id, claim.resume_token,
                                            extension ? &*extension : nullptr),
                        signature)) {
        return st.fail(protocol_error(Reason::bad_signature, "client signature does not verify"));
    }
    auto traffic = derive_traffic_keys(st.secret, st.th_c);
    wipe(st.secret);
    st.send = std::move(traffic.s2c);
    st.receive = std::move(traffic.c2s);
    st.probe = claim.probe;
    st.step = ServerStep::auth_verified;
    return claim;
}

Bytes ServerHandshake::accept(const Accepted& grant) {
    if (!state_ || state_->step != ServerStep::auth_verified || state_->probe) {
        return refuse(Reason::internal, "the server answered out of order");
    }
    if (grant.assigned_id.size() > kMaxIdBytes) return refuse(Reason::internal, "assigned id too long");
    auto& st = *state_;
    WireWriter plain;
    plain.u8(static_cast<std::uint8_t>(FinishStatus::accept));
    plain.raw(grant.session_id);
    plain.raw(grant.session_token);
    plain.u64(grant.resume_point);
    plain.text8(grant.assigned_id);
    plain.u8(static_cast<std::uint8_t>(grant.role));
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::server_finish));
    out.bytes32(crypto::aead_seal(st.finish_key, kServerFinishCounter, st.th_c, plain.bytes()));
    wipe(st.finish_key);
    st.finish_key_live = false;
    st.step = ServerStep::finished;
    return out.take();
}

Bytes ServerHandshake::answer_probe(std::string_view assigned_id, Role role) {
    if (!state_ || state_->step != ServerStep::auth_verified || !state_->probe) {
        return refuse(Reason::internal, "the server answered out of order");
    }
    if (assigned_id.size() > kMaxIdBytes) return refuse(Reason::internal, "assigned id too long");
    auto& st = *state_;
    WireWriter plain;
    plain.u8(static_cast<std::uint8_t>(FinishStatus::probe_passed));
    plain.text8(assigned_id);
    plain.u8(static_cast<std::uint8_t>(role));
    WireWriter out;
    out.u8(static_cast<std::uint8_t>(HandshakeType::server_finish));
    out.bytes32(crypto::aead_seal(st.finish_key, kServerFinishCounter, st.th_c, plain.bytes()));
    wipe(st.finish_key);
    st.finish_key_live = false;
    // No session follows: the traffic keys go, and established() stays false.
    (void)st.fail(make_error(ExitCode::failure, "a probe opens no session"));
    return out.take();
}

Bytes ServerHandshake::refuse(Reason reason, std::string_view detail) {
    if (reason == Reason::none) reason = Reason::internal;
    const auto text = clip_reason_text(detail);
    if (!state_) return encode_alert(reason, text);
    auto& st = *state_;
    Bytes out;
    if (st.have_th_c && st.finish_key_live) {
        WireWriter plain;
        plain.u8(static_cast<std::uint8_t>(FinishStatus::refuse));
        plain.u16(static_cast<std::uint16_t>(reason));
        plain.text16(text);
        WireWriter finish;
        finish.u8(static_cast<std::uint8_t>(HandshakeType::server_finish));
        finish.bytes32(crypto::aead_seal(st.finish_key, kServerFinishCounter, st.th_c, plain.bytes()));
        out = finish.take();
    } else {
        out = encode_alert(reason, text);
    }
    wipe(st.finish_key);
    st.finish_key_live = false;
    if (st.step != ServerStep::failed) (void)st.fail(protocol_error(reason, text));
    return out;
}

const crypto::Hash& ServerHandshake::transcript_hash() const {
    static const crypto::Hash kNone{};
    return state_ ? state_->th_c : kNone;
}

bool ServerHandshake::established() const {
    return state_ && state_->step == ServerStep::finished && !state_->keys_taken;
}

SessionKeys ServerHandshake::take_keys() {
    if (!established()) return unusable_keys();
    state_->keys_taken = true;
    return SessionKeys{std::move(state_->send), std::move(state_->receive), state_->th_c};
}

}  // namespace aegis::protocol
