#pragma once
// Thin, typed wrappers over the libsodium primitives Aegis uses. Nothing above lib/crypto
// includes sodium.h; everything goes through these.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "crypto/secret.h"

namespace aegis::crypto {

inline constexpr std::size_t kPublicKeySize = 32;
inline constexpr std::size_t kSeedSize = 32;
inline constexpr std::size_t kSignatureSize = 64;
inline constexpr std::size_t kHashSize = 32;
inline constexpr std::size_t kAeadTagSize = 16;

using PublicKey = std::array<std::uint8_t, kPublicKeySize>;  // Ed25519 or X25519 public key
using Signature = std::array<std::uint8_t, kSignatureSize>;  // Ed25519 signature
using Hash = std::array<std::uint8_t, kHashSize>;            // BLAKE2b-256 or SHA-256 digest

// Initialises libsodium once; every function here calls it, so callers need not.
void init();

void random_bytes(std::span<std::uint8_t> out);
// For values that must be unpredictable and unique but are not secret (message ids): drawn
// from a per-thread buffer that random_bytes refills 4 KiB at a time, so one costs no system
// call. A forked child never draws what its parent's buffer held.
void random_bytes_buffered(std::span<std::uint8_t> out);
[[nodiscard]] bool constant_time_equal(ByteView a, ByteView b);

// BLAKE2b with a 32-byte output (crypto_generichash), optionally keyed.
[[nodiscard]] Hash blake2b(ByteView data);
[[nodiscard]] Hash blake2b_keyed(ByteView key, ByteView data);

// Incremental BLAKE2b-256 whose running digest can be read without ending it.
class Blake2b {
public:
    Blake2b();
    void update(ByteView data);
    [[nodiscard]] Hash peek() const;  // digest of everything so far; the state goes on

private:
    alignas(64) std::array<std::uint8_t, 384> state_{};
};

[[nodiscard]] Hash sha256(ByteView data);

// KDF(key, label, context) = BLAKE2b-256 keyed with `key` over ascii(label) || context.
[[nodiscard]] SymmetricKey kdf(std::span<const std::uint8_t, 32> key, std::string_view label, ByteView context);

// Ed25519 identity key pair.
class SigningKey {
public:
    [[nodiscard]] static SigningKey generate();
    [[nodiscard]] static SigningKey from_seed(std::span<const std::uint8_t, kSeedSize> seed);

    [[nodiscard]] const PublicKey& public_key() const { return public_key_; }
    [[nodiscard]] const Secret<kSeedSize>& seed() const { return seed_; }
    [[nodiscard]] Signature sign(ByteView message) const;

private:
    SigningKey() = default;
    Secret<64> secret_;  // libsodium's seed || public key form
    Secret<kSeedSize> seed_;
    PublicKey public_key_{};
};

[[nodiscard]] bool verify(const PublicKey& key, ByteView message, const Signature& signature);

// X25519 ephemeral key pair for one handshake.
class EphemeralKey {
public:
    [[nodiscard]] static EphemeralKey generate();
    [[nodiscard]] static EphemeralKey from_secret(std::span<const std::uint8_t, 32> secret);

    [[nodiscard]] const PublicKey& public_key() const { return public_key_; }
    // The shared secret with a peer's ephemeral key; nullopt for a low-order (all-zero) result.
    [[nodiscard]] std::optional<SymmetricKey> agree(const PublicKey& peer) const;

private:
    EphemeralKey() = default;
    Secret<32> secret_;
    PublicKey public_key_{};
};

// ChaCha20-Poly1305 (IETF): 96-bit nonce = 4 zero bytes || 64-bit big-endian counter.
[[nodiscard]] Bytes aead_seal(const SymmetricKey& key, std::uint64_t counter, ByteView ad, ByteView plaintext);
[[nodiscard]] std::optional<Bytes> aead_open(const SymmetricKey& key, std::uint64_t counter, ByteView ad,
                                             ByteView ciphertext);

// Standard base64 alphabet; `padded` selects '=' padding.
[[nodiscard]] std::string base64_encode(ByteView data, bool padded = true);
[[nodiscard]] std::optional<Bytes> base64_decode(std::string_view text, bool padded = true);
[[nodiscard]] std::string hex_encode(ByteView data);
[[nodiscard]] std::optional<Bytes> hex_decode(std::string_view text);

// "SHA256:" + unpadded base64 of SHA-256(public key), as ssh-keygen -l shows.
[[nodiscard]] std::string fingerprint(const PublicKey& key);

}  // namespace aegis::crypto
