#pragma once
// Certificates of an operator certificate authority (PROTOCOL.md §2.1, aegis-keygen(1) -s, -L).
// A CA is an Ed25519 key kept offline; a certificate is its signature over one identity key
// with the id and role it is granted, optional channel narrowing (as the authorized file's pub=
// and sub=), a serial for revocation and a validity window, as OpenSSH certificates do.
//   certificate file, e.g. id_ed25519-cert.pub:
//     one line  "aegis-ed25519-cert <base64 of the certificate> <comment>"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"
#include "crypto/primitives.h"

namespace aegis::identity {

inline constexpr std::string_view kCertificateType = "aegis-ed25519-cert";
// The first bytes of every certificate and of the message its CA signs.
inline constexpr std::string_view kCertificateMagic = "aegis/1 certificate";
// valid_before of a certificate that never expires.
inline constexpr std::uint64_t kForever = std::numeric_limits<std::uint64_t>::max();
// Longest certificate encoding (749 bytes): magic, key, role, id (at most 64 bytes), serial, two
// times, two patterns (u8-len), CA key, signature.
inline constexpr std::size_t kMaxCertificateSize =
    kCertificateMagic.size() + 32 + 1 + (1 + 64) + 3 * 8 + 2 * (1 + 255) + 32 + crypto::kSignatureSize;

// What a certificate makes its key: a client identity of the gateway (agent, backend), or a
// gateway that brokers may trust by CA (aegis-connect --backend-ca).
enum class CertificateRole : std::uint8_t { agent = 1, backend = 2, gateway = 3 };

[[nodiscard]] std::string_view to_string(CertificateRole role);
[[nodiscard]] std::optional<CertificateRole> parse_certificate_role(std::string_view text);

struct Certificate {
    crypto::PublicKey key{};  // the certified identity key
    CertificateRole role = CertificateRole::agent;
    std::string id;  // a valid identity id (channel::validate_id)
    std::uint64_t serial = 0;
    std::uint64_t valid_after = 0;                   // Unix seconds: valid from this second on
    std::uint64_t valid_before = kForever;           // Unix seconds: no longer valid from this second on
    std::optional<std::string> publish_narrowing;    // as the authorized file's pub=
    std::optional<std::string> subscribe_narrowing;  // as the authorized file's sub=
    crypto::PublicKey ca_key{};
    crypto::Signature signature{};
};

// The bytes the CA signs: the whole encoding but the signature.
[[nodiscard]] Bytes certificate_body(const Certificate& certificate);
// body || signature.
[[nodiscard]] Bytes encode_certificate(const Certificate& certificate);
// Sets ca_key and the signature. The fields must be valid (check_certificate_fields).
[[nodiscard]] Certificate sign_certificate(Certificate certificate, const crypto::SigningKey& ca);
// What is wrong with the fields a CA is asked to sign, if anything (ExitCode::bad_input).
[[nodiscard]] Result<void> check_certificate_fields(const Certificate& certificate);
// Parses an encoding and verifies its signature by its own CA key: ExitCode::bad_input naming
// what is wrong. Whether that CA is trusted, and the validity window, are the caller's checks.
[[nodiscard]] Result<Certificate> decode_certificate(ByteView bytes);

enum class Validity { valid, not_yet_valid, expired };
// At Unix second `now_s`, allowing `skew_s` of clock difference either way.
[[nodiscard]] Validity validity_at(const Certificate& certificate, std::uint64_t now_s, std::uint64_t skew_s);
// "2026-12-07T10:00:00Z", or "forever" for kForever, or "always" for 0 as valid_after.
[[nodiscard]] std::string format_time(std::uint64_t unix_seconds);
// "from 2026-12-07T10:00:00Z to 2027-12-07T10:00:00Z"
[[nodiscard]] std::string format_validity(const Certificate& certificate);
// Why `certificate` is not valid at `now_s` within `skew_s`, for a refusal: "certificate serial 7
// of id gw is expired: valid from ... to ...; <clock> is ..." (`clock` names whose time it is,
// e.g. "the gateway's time"); nullopt when it is valid.
[[nodiscard]] std::optional<std::string> validity_problem(const Certificate& certificate, std::uint64_t now_s,
                                                          std::uint64_t skew_s, std::string_view clock);

struct CertificateFile {
    Certificate certificate;
    std::string comment;
};

// "aegis-ed25519-cert <base64> [comment]" without a newline.
[[nodiscard]] std::string format_certificate_line(const Certificate& certificate, std::string_view comment);
// One certificate line (surrounding whitespace ignored); ExitCode::bad_input otherwise.
[[nodiscard]] Result<CertificateFile> parse_certificate_line(std::string_view line);
// ExitCode::bad_input for a missing, unreadable, foreign or corrupt file.
[[nodiscard]] Result<CertificateFile> load_certificate(const std::filesystem::path& path);
// KEY-cert.pub for a key file KEY or KEY.pub, as ssh-keygen names them.
[[nodiscard]] std::filesystem::path certificate_path(const std::filesystem::path& key_path);
// The certificate file beside the key file `key_path` (certificate_path), encoded, checked to
// certify `key`; empty when there is none. One that is unreadable, corrupt or for another key is
// ExitCode::bad_input naming the file, never ignored.
[[nodiscard]] Result<Bytes> load_certificate_beside(const std::filesystem::path& key_path,
                                                    const crypto::PublicKey& key);
// Writes the certificate file (0644), refusing to replace one unless `overwrite`.
[[nodiscard]] Result<void> write_certificate(const std::filesystem::path& path, const CertificateFile& file,
                                             bool overwrite);

}  // namespace aegis::identity
