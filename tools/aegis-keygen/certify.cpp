#include "certify.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/tool.h"
#include "commands.h"
#include "crypto/primitives.h"
#include "identity/certificate.h"
#include "identity/keyfile.h"

namespace aegis::keygen {
namespace {

[[nodiscard]] Error validity_error(std::string_view text, std::string_view problem) {
    return make_error(ExitCode::usage,
                      "-V '{}': {} (expected [FROM:]TO, each now, always, forever, YYYYMMDD, YYYYMMDDHHMMSS or "
                      "+/-N with s, m, h, d or w)",
                      text, problem);
}

[[nodiscard]] std::optional<std::uint64_t> digits(std::string_view text) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
    return value;
}

// One end of a validity window; `is_start` allows "always", the end "forever".
[[nodiscard]] std::optional<std::uint64_t> parse_time(std::string_view text, std::uint64_t now, bool is_start) {
    if (text == "now") return now;
    if (is_start && text == "always") return std::uint64_t{0};
    if (!is_start && text == "forever") return identity::kForever;
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        const bool ahead = text.front() == '+';
        text.remove_prefix(1);
        if (text.size() < 2) return std::nullopt;
        std::uint64_t unit = 0;
        switch (text.back()) {
            case 's': unit = 1; break;
            case 'm': unit = 60; break;
            case 'h': unit = 3600; break;
            case 'd': unit = 86400; break;
            case 'w': unit = 7 * 86400; break;
            default: return std::nullopt;
        }
        const auto count = digits(text.substr(0, text.size() - 1));
        if (!count || *count > 100ull * 366 * 86400 / unit) return std::nullopt;  // at most about a century
        const auto delta = *count * unit;
        if (!ahead) return now > delta ? now - delta : 0;
        return now + delta;
    }
    if (text.size() != 8 && text.size() != 14) return std::nullopt;
    if (!digits(text)) return std::nullopt;
    const auto field = [&](std::size_t at, std::size_t n) { return static_cast<int>(*digits(text.substr(at, n))); };
    std::tm utc{};
    utc.tm_year = field(0, 4) - 1900;
    utc.tm_mon = field(4, 2) - 1;
    utc.tm_mday = field(6, 2);
    if (text.size() == 14) {
        utc.tm_hour = field(8, 2);
        utc.tm_min = field(10, 2);
        utc.tm_sec = field(12, 2);
    }
    if (utc.tm_year < 70 || utc.tm_mon < 0 || utc.tm_mon > 11 || utc.tm_mday < 1 || utc.tm_mday > 31 ||
        utc.tm_hour > 23 || utc.tm_min > 59 || utc.tm_sec > 59)
        return std::nullopt;
    const std::tm asked = utc;
    const auto seconds = ::timegm(&utc);
    // timegm normalises 20270231 to March: refuse a date that does not exist.
    if (seconds < 0 || utc.tm_mday != asked.tm_mday || utc.tm_mon != asked.tm_mon) return std::nullopt;
    return static_cast<std::uint64_t>(seconds);
}

[[nodiscard]] Result<void> apply_narrowing(std::string_view text, identity::Certificate& certificate) {
    std::size_t start = 0;
    while (true) {
        const auto comma = text.find(',', start);
        const auto option =
            text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        const auto equals = option.find('=');
        const auto name = option.substr(0, equals);
        if (equals == std::string_view::npos || (name != "pub" && name != "sub"))
            return make_error(ExitCode::usage, "-n '{}': expected pub=PATTERN[,sub=PATTERN]", text);
        auto& target = name == "pub" ? certificate.publish_narrowing : certificate.subscribe_narrowing;
        if (target) return make_error(ExitCode::usage, "-n '{}': {}= given twice", text, name);
        target = std::string(option.substr(equals + 1));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return {};
}

[[nodiscard]] std::uint64_t unix_now() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

[[nodiscard]] std::uint64_t random_serial() {
    std::array<std::uint8_t, 8> bytes{};
    crypto::random_bytes(bytes);
    std::uint64_t serial = 0;
    for (const auto b : bytes) serial = (serial << 8) | b;
    return serial >> 1;  // below 2^63: every shell and JSON reader keeps it exact
}

// The certificate every key gets: all but the key and the CA's part.
[[nodiscard]] Result<identity::Certificate> requested(const CertificateRequest& request) {
    identity::Certificate out;
    const auto role = identity::parse_certificate_role(request.role);
    if (!role) return make_error(ExitCode::usage, "-r '{}': expected agent, backend or gateway", request.role);
    out.role = *role;
    out.id = request.id;
    if (request.narrowing) {
        if (auto applied = apply_narrowing(*request.narrowing, out); !applied) return applied.take_error();
    }
    if (request.validity) {
        auto window = parse_validity(*request.validity, unix_now());
        if (!window) return window.take_error();
        out.valid_after = window->first;
        out.valid_before = window->second;
    }
    out.serial = request.serial.value_or(random_serial());
    if (auto valid = identity::check_certificate_fields(out); !valid) {
        auto error = valid.take_error();
        error.exit = ExitCode::usage;
        return error;
    }
    return out;
}

[[nodiscard]] nlohmann::json certificate_json(const identity::CertificateFile& file, const std::filesystem::path& path,
                                              std::uint64_t now) {
    const auto& c = file.certificate;
    const auto validity = identity::validity_at(c, now, 0);
    return nlohmann::json{
        {"file", path.string()},
        {"type", identity::kCertificateType},
        {"role", identity::to_string(c.role)},
        {"id", c.id},
        {"serial", c.serial},
        {"fingerprint", crypto::fingerprint(c.key)},
        {"public_key", crypto::base64_encode(c.key)},
        {"ca_fingerprint", crypto::fingerprint(c.ca_key)},
        {"valid_after", c.valid_after},
        {"valid_before", c.valid_before},
        {"valid_from_text", identity::format_time(c.valid_after)},
        {"valid_to_text", identity::format_time(c.valid_before)},
        {"status", validity == identity::Validity::valid     ? "valid"
                   : validity == identity::Validity::expired ? "expired"
                                                             : "not_yet_valid"},
        {"pub", c.publish_narrowing ? nlohmann::json(*c.publish_narrowing) : nlohmann::json(nullptr)},
        {"sub", c.subscribe_narrowing ? nlohmann::json(*c.subscribe_narrowing) : nlohmann::json(nullptr)},
        {"comment", file.comment},
    };
}

}  // namespace

Result<std::pair<std::uint64_t, std::uint64_t>> parse_validity(std::string_view text, std::uint64_t now) {
    const auto colon = text.find(':');
    const auto from_text = colon == std::string_view::npos ? std::string_view("now") : text.substr(0, colon);
    const auto to_text = colon == std::string_view::npos ? text : text.substr(colon + 1);
    const auto from = parse_time(from_text, now, true);
    if (!from) return validity_error(text, fmt::format("'{}' is not a start time", from_text));
    const auto to = parse_time(to_text, now, false);
    if (!to) return validity_error(text, fmt::format("'{}' is not an end time", to_text));
    if (*from >= *to) return validity_error(text, "it ends before it starts");
    return std::pair{*from, *to};
}

int sign_keys(const Options& options) {
    auto request = requested(options.certificate);
    if (!request) return cli::report(kTool, request.error());
    const auto ca = identity::load_secret_key(options.certificate.ca_key);
    if (!ca) return cli::report(kTool, ca.error());
    for (const auto& key_path : options.keys) {
        auto key = identity::load_public_key(key_path);
        if (!key) return cli::report(kTool, key.error());
        auto unsigned_certificate = *request;
        unsigned_certificate.key = key->key;
        identity::CertificateFile file{identity::sign_certificate(std::move(unsigned_certificate), ca->key),
                                       options.comment.value_or(key->comment)};
        const auto path = identity::certificate_path(key_path);
        if (auto written = identity::write_certificate(path, file, options.force); !written)
            return cli::report(kTool, written.error());
        if (!options.quiet) {
            const auto& c = file.certificate;
            fmt::print("Signed {} certificate {}: id \"{}\" serial {} for {} valid {}\n", identity::to_string(c.role),
                       path.string(), c.id, c.serial, crypto::fingerprint(c.key), identity::format_validity(c));
        }
    }
    return 0;
}

int show_certificate(const Options& options) {
    const auto path = *options.file;
    const auto loaded = identity::load_certificate(path);
    if (!loaded) return cli::report(kTool, loaded.error());
    const auto now = unix_now();
    const auto json = certificate_json(*loaded, path, now);
    if (options.json) {
        fmt::print("{}\n", json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        return 0;
    }
    const auto& c = loaded->certificate;
    fmt::print("{}:\n", path.string());
    fmt::print("        Type: {} {} certificate\n", identity::kCertificateType, identity::to_string(c.role));
    fmt::print("        Public key: {}\n", crypto::fingerprint(c.key));
    fmt::print("        Signing CA: {}\n", crypto::fingerprint(c.ca_key));
    fmt::print("        Id: \"{}\"\n", c.id);
    fmt::print("        Serial: {}\n", c.serial);
    const auto status = json["status"].get<std::string>();
    fmt::print("        Valid: {} ({})\n", identity::format_validity(c),
               status == "not_yet_valid" ? "not yet valid" : status);
    fmt::print("        Publish narrowing: {}\n", c.publish_narrowing.value_or("(none)"));
    fmt::print("        Subscribe narrowing: {}\n", c.subscribe_narrowing.value_or("(none)"));
    if (!loaded->comment.empty()) fmt::print("        Comment: {}\n", loaded->comment);
    return 0;
}

}  // namespace aegis::keygen
