#include "identity/certificate.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>

#include "channel/channel.h"
#include "core/wire.h"
#include "identity/keyfile.h"

namespace aegis::identity {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBlank = " \t\r\n";

[[nodiscard]] std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(kBlank);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(kBlank) - first + 1);
}

[[nodiscard]] Error bad(std::string_view subject, std::string_view problem) {
    return make_error(ExitCode::bad_input, "{} {}", subject, problem);
}

[[nodiscard]] Result<void> check_narrowing(std::string_view name, const std::optional<std::string>& pattern) {
    if (!pattern) return {};
    if (auto valid = channel::validate_pattern(*pattern); !valid)
        return make_error(ExitCode::bad_input, "{}=: {}", name, valid.error().message);
    return {};
}

}  // namespace

std::string_view to_string(CertificateRole role) {
    switch (role) {
        case CertificateRole::agent: return "agent";
        case CertificateRole::backend: return "backend";
        case CertificateRole::gateway: return "gateway";
    }
    return "unknown";
}

std::optional<CertificateRole> parse_certificate_role(std::string_view text) {
    for (const auto role : {CertificateRole::agent, CertificateRole::backend, CertificateRole::gateway})
        if (text == to_string(role)) return role;
    return std::nullopt;
}

Result<void> check_certificate_fields(const Certificate& certificate) {
    if (auto valid = channel::validate_id(certificate.id); !valid) return valid.take_error();
    const auto role = static_cast<std::uint8_t>(certificate.role);
    if (role < 1 || role > 3) return make_error(ExitCode::bad_input, "unknown role {}", role);
    if (auto valid = check_narrowing("pub", certificate.publish_narrowing); !valid) return valid;
    if (auto valid = check_narrowing("sub", certificate.subscribe_narrowing); !valid) return valid;
    if (certificate.valid_after >= certificate.valid_before)
        return make_error(ExitCode::bad_input, "the validity window is empty ({})", format_validity(certificate));
    return {};
}

Bytes certificate_body(const Certificate& certificate) {
    WireWriter out;
    out.raw(as_bytes(kCertificateMagic));
    out.raw(certificate.key);
    out.u8(static_cast<std::uint8_t>(certificate.role));
    out.text8(certificate.id);
    out.u64(certificate.serial);
    out.u64(certificate.valid_after);
    out.u64(certificate.valid_before);
    out.text8(certificate.publish_narrowing.value_or(""));
    out.text8(certificate.subscribe_narrowing.value_or(""));
    out.raw(certificate.ca_key);
    return out.take();
}

Bytes encode_certificate(const Certificate& certificate) {
    auto bytes = certificate_body(certificate);
    bytes.insert(bytes.end(), certificate.signature.begin(), certificate.signature.end());
    return bytes;
}

Certificate sign_certificate(Certificate certificate, const crypto::SigningKey& ca) {
    certificate.ca_key = ca.public_key();
    certificate.signature = ca.sign(certificate_body(certificate));
    return certificate;
}

Result<Certificate> decode_certificate(ByteView bytes) {
    constexpr std::string_view subject = "certificate";
    if (bytes.size() > kMaxCertificateSize) return bad(subject, "is too long");
    WireReader in(bytes);
    ByteView magic;
    if (!in.raw(kCertificateMagic.size(), magic) ||
        !std::equal(magic.begin(), magic.end(), kCertificateMagic.begin(), kCertificateMagic.end(),
                    [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); }))
        return bad(subject, "does not start with 'aegis/1 certificate' (not an Aegis certificate)");
    Certificate out;
    std::uint8_t role = 0;
    std::string publish;
    std::string subscribe;
    if (!in.raw(out.key) || !in.u8(role) || !in.text8(out.id) || !in.u64(out.serial) || !in.u64(out.valid_after) ||
        !in.u64(out.valid_before) || !in.text8(publish) || !in.text8(subscribe) || !in.raw(out.ca_key) ||
        !in.raw(out.signature))
        return bad(subject, "is truncated");
    if (!in.at_end()) return bad(subject, "has bytes after its signature");
    if (role < 1 || role > 3) return bad(subject, fmt::format("has an unknown role {}", role));
    out.role = static_cast<CertificateRole>(role);
    if (!publish.empty()) out.publish_narrowing = std::move(publish);
    if (!subscribe.empty()) out.subscribe_narrowing = std::move(subscribe);
    if (auto valid = check_certificate_fields(out); !valid)
        return bad(subject, fmt::format("is invalid: {}", valid.error().message));
    if (!crypto::verify(out.ca_key, bytes.first(bytes.size() - crypto::kSignatureSize), out.signature))
        return bad(subject, "has a signature that does not verify (corrupt or altered)");
    return out;
}

Validity validity_at(const Certificate& certificate, std::uint64_t now_s, std::uint64_t skew_s) {
    // Saturating: a clock near either end of the range must not wrap.
    const std::uint64_t ahead = now_s > kForever - skew_s ? kForever : now_s + skew_s;
    const std::uint64_t behind = now_s < skew_s ? 0 : now_s - skew_s;
    if (ahead < certificate.valid_after) return Validity::not_yet_valid;
    if (behind >= certificate.valid_before) return Validity::expired;
    return Validity::valid;
}

std::string format_time(std::uint64_t unix_seconds) {
    if (unix_seconds == kForever) return "forever";
    if (unix_seconds == 0) return "always";
    const auto seconds = static_cast<std::time_t>(unix_seconds);
    std::tm utc{};
    if (::gmtime_r(&seconds, &utc) == nullptr) return fmt::format("{} (Unix time)", unix_seconds);
    std::array<char, 32> text{};
    const auto n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return n == 0 ? fmt::format("{} (Unix time)", unix_seconds) : std::string(text.data(), n);
}

std::string format_validity(const Certificate& certificate) {
    return fmt::format("from {} to {}", format_time(certificate.valid_after), format_time(certificate.valid_before));
}

std::optional<std::string> validity_problem(const Certificate& certificate, std::uint64_t now_s, std::uint64_t skew_s,
                                            std::string_view clock) {
    const auto validity = validity_at(certificate, now_s, skew_s);
    if (validity == Validity::valid) return std::nullopt;
    return fmt::format("certificate serial {} of id {} is {}: valid {}; {} is {}", certificate.serial, certificate.id,
                       validity == Validity::expired ? "expired" : "not yet valid", format_validity(certificate), clock,
                       format_time(now_s));
}

std::string format_certificate_line(const Certificate& certificate, std::string_view comment) {
    const auto trimmed = trim(comment);
    auto line = fmt::format("{} {}", kCertificateType, crypto::base64_encode(encode_certificate(certificate)));
    if (!trimmed.empty()) fmt::format_to(std::back_inserter(line), " {}", trimmed);
    return line;
}

Result<CertificateFile> parse_certificate_line(std::string_view line) {
    constexpr std::string_view subject = "certificate line";
    std::string_view rest = trim(line);
    if (rest.empty()) return bad(subject, "is empty");
    if (rest.find_first_of("\r\n") != std::string_view::npos)
        return bad(subject, "has more than one line; a certificate is one line");
    const auto type_end = rest.find_first_of(kBlank);
    const auto type = rest.substr(0, type_end);
    if (type != kCertificateType) {
        if (type == kPublicKeyType)
            return bad(subject, "is a public key, not a certificate (make one with aegis-keygen -s)");
        if (type == kSecretKeyType) return bad(subject, "is a secret key, not a certificate");
        return bad(subject,
                   fmt::format("is not an Aegis certificate (expected a line starting '{}')", kCertificateType));
    }
    rest = type_end == std::string_view::npos ? std::string_view{} : trim(rest.substr(type_end));
    const auto data_end = rest.find_first_of(kBlank);
    const auto data = rest.substr(0, data_end);
    const auto comment = data_end == std::string_view::npos ? std::string_view{} : trim(rest.substr(data_end));
    if (data.empty()) return bad(subject, "is truncated (the certificate is missing)");
    const auto decoded = crypto::base64_decode(data);
    if (!decoded) return bad(subject, "is truncated or corrupt (not valid base64)");
    auto certificate = decode_certificate(*decoded);
    if (!certificate) return certificate.take_error();
    return CertificateFile{std::move(certificate.value()), std::string(comment)};
}

Result<CertificateFile> load_certificate(const fs::path& path) {
    auto text = read_public_file(path);
    if (!text) return text.take_error();
    auto parsed = parse_certificate_line(*text);
    if (!parsed) return make_error(ExitCode::bad_input, "'{}': {}", path.string(), parsed.error().message);
    return parsed;
}

fs::path certificate_path(const fs::path& key_path) {
    auto name = key_path.filename().string();
    if (name.size() > 4 && name.ends_with(".pub")) name.resize(name.size() - 4);
    return key_path.parent_path() / (name + "-cert.pub");
}

Result<Bytes> load_certificate_beside(const fs::path& key_path, const crypto::PublicKey& key) {
    const auto path = certificate_path(key_path);
    std::error_code ec;
    if (!fs::exists(path, ec)) return Bytes{};
    auto loaded = load_certificate(path);
    if (!loaded) return loaded.take_error();
    if (loaded->certificate.key != key)
        return make_error(ExitCode::bad_input, "certificate '{}' is for key {}, not for this identity's key {}",
                          path.string(), crypto::fingerprint(loaded->certificate.key), crypto::fingerprint(key));
    return encode_certificate(loaded->certificate);
}

Result<void> write_certificate(const fs::path& path, const CertificateFile& file, bool overwrite) {
    if (!is_valid_comment(file.comment))
        return make_error(ExitCode::bad_input, "the comment must be one line of printable text");
    return write_public_file(path, format_certificate_line(file.certificate, file.comment) + "\n", overwrite);
}

}  // namespace aegis::identity

#include "protocol/handshake.h"
static_assert(aegis::identity::kMaxCertificateSize == aegis::protocol::kMaxCertificateBytes,
              "a ClientAuth must hold the longest certificate");
