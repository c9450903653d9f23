#include "crypto/primitives.h"

#include <pthread.h>
#include <sodium.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace aegis::crypto {

static_assert(sizeof(crypto_generichash_state) <= 384, "Blake2b state buffer too small");
static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeySize && crypto_sign_BYTES == kSignatureSize);
static_assert(crypto_scalarmult_BYTES == 32 && crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);

void secure_wipe(void* data, std::size_t size) {
    sodium_memzero(data, size);
}

void init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    });
}

void random_bytes(std::span<std::uint8_t> out) {
    init();
    randombytes_buf(out.data(), out.size());
}

namespace {

std::atomic<std::uint64_t> fork_generation{0};

struct RandomBuffer {
    std::array<std::uint8_t, 4096> bytes{};
    std::size_t used = sizeof(bytes);  // empty
    std::uint64_t generation = 0;
    ~RandomBuffer() { secure_wipe(bytes.data(), bytes.size()); }
};

}  // namespace

void random_bytes_buffered(std::span<std::uint8_t> out) {
    static std::once_flag once;
    std::call_once(once, [] {
        ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    });
    thread_local RandomBuffer buffer;
    const auto generation = fork_generation.load(std::memory_order_relaxed);
    if (buffer.generation != generation) {
        buffer.used = buffer.bytes.size();  // the parent's: drawn by the parent too
        buffer.generation = generation;
    }
    if (out.size() > buffer.bytes.size()) {
        random_bytes(out);
        return;
    }
    if (buffer.bytes.size() - buffer.used < out.size()) {
        random_bytes(buffer.bytes);
        buffer.used = 0;
    }
    std::memcpy(out.data(), buffer.bytes.data() + buffer.used, out.size());
    secure_wipe(buffer.bytes.data() + buffer.used, out.size());  // handed out once
    buffer.used += out.size();
}

bool constant_time_equal(ByteView a, ByteView b) {
    return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

Hash blake2b(ByteView data) {
    return blake2b_keyed({}, data);
}

Hash blake2b_keyed(ByteView key, ByteView data) {
    init();
    Hash out{};
    crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.empty() ? nullptr : key.data(),
                       key.size());
    return out;
}

Blake2b::Blake2b() {
    init();
    crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_.data()), nullptr, 0, kHashSize);
}

void Blake2b::update(ByteView data) {
    crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_.data()), data.data(), data.size());
}

Hash Blake2b::peek() const {
    alignas(64) std::array<std::uint8_t, 384> copy = state_;
    Hash out{};
    crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(copy.data()), out.data(), out.size());
    return out;
}

Hash sha256(ByteView data) {
    init();
    Hash out{};
    crypto_hash_sha256(out.data(), data.data(), data.size());
    return out;
}

SymmetricKey kdf(std::span<const std::uint8_t, 32> key, std::string_view label, ByteView context) {
    init();
    crypto_generichash_state state;
    crypto_generichash_init(&state, key.data(), key.size(), 32);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(label.data()), label.size());
    crypto_generichash_update(&state, context.data(), context.size());
    SymmetricKey out;
    crypto_generichash_final(&state, out.data(), out.size());
    sodium_memzero(&state, sizeof state);
    return out;
}

SigningKey SigningKey::generate() {
    Secret<kSeedSize> seed;
    random_bytes(seed.mutable_view());
    return from_seed(seed.view());
}

SigningKey SigningKey::from_seed(std::span<const std::uint8_t, kSeedSize> seed) {
    init();
    SigningKey key;
    crypto_sign_seed_keypair(key.public_key_.data(), key.secret_.data(), seed.data());
    std::memcpy(key.seed_.data(), seed.data(), kSeedSize);
    return key;
}

Signature SigningKey::sign(ByteView message) const {
    Signature sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
    return sig;
}

bool verify(const PublicKey& key, ByteView message, const Signature& signature) {
    init();
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

EphemeralKey EphemeralKey::generate() {
    Secret<32> secret;
    random_bytes(secret.mutable_view());
    return from_secret(secret.view());
}

EphemeralKey EphemeralKey::from_secret(std::span<const std::uint8_t, 32> secret) {
    init();
    EphemeralKey key;
    std::memcpy(key.secret_.data(), secret.data(), 32);
    crypto_scalarmult_base(key.public_key_.data(), key.secret_.data());
    return key;
}

std::optional<SymmetricKey> EphemeralKey::agree(const PublicKey& peer) const {
    SymmetricKey shared;
    if (crypto_scalarmult(shared.data(), secret_.data(), peer.data()) != 0) return std::nullopt;
    return shared;
}

namespace {
std::array<std::uint8_t, 12> make_nonce(std::uint64_t counter) {
    std::array<std::uint8_t, 12> nonce{};
    for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(counter >> (8 * (7 - i)));
    return nonce;
}
}  // namespace

Bytes aead_seal(const SymmetricKey& key, std::uint64_t counter, ByteView ad, ByteView plaintext) {
    init();
    Bytes out(plaintext.size() + kAeadTagSize);
    unsigned long long out_len = 0;
    const auto nonce = make_nonce(counter);
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(), plaintext.size(), ad.data(),
                                              ad.size(), nullptr, nonce.data(), key.data());
    out.resize(out_len);
    return out;
}

std::optional<Bytes> aead_open(const SymmetricKey& key, std::uint64_t counter, ByteView ad, ByteView ciphertext) {
    init();
    if (ciphertext.size() < kAeadTagSize) return std::nullopt;
    Bytes out(ciphertext.size() - kAeadTagSize);
    unsigned long long out_len = 0;
    const auto nonce = make_nonce(counter);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, ciphertext.data(), ciphertext.size(),
                                                  ad.data(), ad.size(), nonce.data(), key.data()) != 0) {
        return std::nullopt;
    }
    out.resize(out_len);
    return out;
}

namespace {
int variant(bool padded) {
    return padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
}
}  // namespace

std::string base64_encode(ByteView data, bool padded) {
    init();
    std::string out(sodium_base64_encoded_len(data.size(), variant(padded)), '\0');
    sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), variant(padded));
    out.resize(std::strlen(out.c_str()));
    return out;
}

std::optional<Bytes> base64_decode(std::string_view text, bool padded) {
    init();
    Bytes out(text.size() / 4 * 3 + 3);
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end, variant(padded)) !=
            0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

std::string hex_encode(ByteView data) {
    init();
    std::string out(data.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), data.data(), data.size());
    out.resize(data.size() * 2);
    return out;
}

std::optional<Bytes> hex_decode(std::string_view text) {
    init();
    if (text.size() % 2 != 0) return std::nullopt;
    Bytes out(text.size() / 2);
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

std::string fingerprint(const PublicKey& key) {
    return "SHA256:" + base64_encode(sha256(key), false);
}

}  // namespace aegis::crypto
