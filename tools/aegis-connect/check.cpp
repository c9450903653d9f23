// aegis-connect --check URL: the path to a gateway, one step a line (like tailscale netcheck),
// through the broker's own transport and handshake; starts no broker and writes no file.

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "broker/known_backends.h"
#include "broker/launch.h"
#include "identity/certificate.h"
#include "identity/keyfile.h"
#include "net/address.h"
#include "net/proxy_env.h"
#include "options.h"
#include "session/path_check.h"

namespace aegis::connect {

namespace {

constexpr std::string_view kTool = "aegis-connect";

struct Trust {
    std::vector<crypto::PublicKey> pinned;
    std::vector<crypto::PublicKey> cas;
};

// --backend-ca, --backend-key, or the known_backends lines for this URL (read, never written).
[[nodiscard]] Result<Trust> choose_trust(const broker::ConnectOptions& options, const net::Url& url) {
    Trust trust;
    if (!options.backend_ca.empty()) {
        if (!options.backend_keys.empty())
            return make_error(ExitCode::usage, "--backend-ca cannot be combined with --backend-key");
        auto cas = broker::load_gateway_cas(options.backend_ca);
        if (!cas) return cas.take_error();
        trust.cas = std::move(cas.value());
        return trust;
    }
    for (const auto& text : options.backend_keys) {
        auto key = identity::resolve_public_key(text);
        if (!key) return make_error(ExitCode::bad_input, "--backend-key: {}", key.error().message);
        trust.pinned.push_back(key->key);
    }
    if (!trust.pinned.empty()) return trust;
    const auto state_dir =
        options.state_dir.empty() ? broker::default_state_dir() : std::filesystem::path(options.state_dir);
    auto known = broker::find_known_backends(state_dir / "known_backends", broker::canonical_url(url));
    if (!known) return known.take_error();
    trust.pinned = std::move(known.value());
    return trust;
}

// The same settings the broker would use, from the same options.
[[nodiscard]] Result<session::ClientSessionOptions> session_options(const broker::ConnectOptions& options,
                                                                    const crypto::SigningKey& key,
                                                                    const std::filesystem::path& key_path) {
    auto url = net::parse_url(options.url);
    if (!url) return url.take_error();
    session::ClientSessionOptions out;
    out.url = *url;
    out.identity = &key;
    out.transport.proxy =
        options.proxy.empty() ? net::proxy_from_environment(*url, net::process_environment()) : options.proxy;
    if (!out.transport.proxy.empty()) {
        if (auto proxy = net::parse_proxy_url(out.transport.proxy); !proxy) {
            return make_error(ExitCode::usage, "{}: {}", options.proxy.empty() ? "https_proxy/http_proxy" : "--proxy",
                              proxy.error().message);
        }
    }
    if (!options.ca_file.empty()) {
        if (!url->tls) return make_error(ExitCode::usage, "--ca-file is for wss:// URLs; {} is ws://", options.url);
        if (!std::ifstream(options.ca_file))
            return make_error(ExitCode::bad_input, "cannot read --ca-file {}", options.ca_file);
        out.transport.tls_ca_file = options.ca_file;
    }
    auto certificate = identity::load_certificate_beside(key_path, key.public_key());
    if (!certificate) return certificate.take_error();
    out.certificate = std::move(certificate.value());
    auto trust = choose_trust(options, *url);
    if (!trust) return trust.take_error();
    out.pinned_server_keys = std::move(trust->pinned);
    out.gateway_cas = std::move(trust->cas);
    return out;
}

[[nodiscard]] double milliseconds(std::chrono::microseconds elapsed) {
    return static_cast<double>(elapsed.count()) / 1000.0;
}

void print_text(const session::PathReport& report) {
    for (const auto& step : report.steps) {
        fmt::print("{:<4} {:<11} {}  {:.1f} ms\n", step.ok ? "ok" : "FAIL", step.name, step.detail,
                   milliseconds(step.elapsed));
    }
}

void print_json(const std::string& url, const session::PathReport& report) {
    auto steps = nlohmann::json::array();
    for (const auto& step : report.steps) {
        // Three decimals: the JSON says what the text rounds.
        const double ms = std::round(milliseconds(step.elapsed) * 1000.0) / 1000.0;
        steps.push_back({{"name", step.name}, {"ok", step.ok}, {"ms", ms}, {"detail", step.detail}});
    }
    nlohmann::json out{{"url", url}, {"steps", std::move(steps)}, {"result", report.failure ? "failed" : "ok"}};
    if (report.failure) {
        out["exit"] = to_int(report.failure->exit);
        out["failed_step"] = report.failed_step;
        out["error"] = report.failure->message;
        out["fix"] = report.fix;
    } else {
        out["exit"] = 0;
    }
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

int run_check(const Options& options) {
    const auto& c = options.connect;
    if (c.url.empty()) return cli::report(kTool, cli::usage_error(kTool, "--check needs a gateway URL"));
    if (!std::isfinite(c.timeout_s) || c.timeout_s <= 0)
        return cli::report(kTool, make_error(ExitCode::usage, "--timeout must be a positive number of seconds"));
    const auto key_path = c.identity.value_or(identity::default_key_path());
    auto loaded = identity::load_secret_key(key_path);
    if (!loaded) return cli::report(kTool, loaded.error());
    auto settings = session_options(c, loaded->key, key_path);
    if (!settings) return cli::report(kTool, settings.error());
    // --accept-new: the key presented is taken for this check only; nothing is recorded.
    const bool unpinned = settings->pinned_server_keys.empty() && settings->gateway_cas.empty();
    if (unpinned && !c.accept_new) {
        return cli::report(kTool, make_error(ExitCode::usage,
                                             "--backend-key, --backend-ca or --accept-new is required (no "
                                             "known_backends line names this URL)"));
    }
    const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(c.timeout_s * 1000)));
    const auto report = session::check_path(std::move(settings.value()), timeout, unpinned);
    if (options.json) {
        print_json(c.url, report);
    } else {
        print_text(report);
    }
    if (!report.failure) return 0;
    auto error = *report.failure;
    error.message =
        fmt::format("{}: {}{}{}", report.failed_step, error.message, report.fix.empty() ? "" : "; ", report.fix);
    return cli::report(kTool, error);
}

}  // namespace aegis::connect
