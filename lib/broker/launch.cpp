#include "broker/launch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "broker/known_backends.h"
#include "identity/certificate.h"
#include "ipc/socket_path.h"
#include "net/address.h"
#include "net/proxy_env.h"
#include "net/websocket.h"
#include "store/private_files.h"

namespace aegis::broker {

namespace {

[[nodiscard]] Result<std::chrono::milliseconds> seconds_option(std::string_view name, double seconds,
                                                               bool zero_allowed) {
    if (!std::isfinite(seconds) || seconds < 0 || (!zero_allowed && seconds == 0) || seconds > 86'400 * 365) {
        return make_error(ExitCode::usage, "{} must be a {} number of seconds", name,
                          zero_allowed ? "non-negative" : "positive");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

[[nodiscard]] Result<void> apply_timings(const ConnectOptions& options, BrokerConfig& config) {
    auto backoff_min = seconds_option("--backoff-min", options.backoff_min_s, false);
    if (!backoff_min) return backoff_min.take_error();
    auto backoff_max = seconds_option("--backoff-max", options.backoff_max_s, false);
    if (!backoff_max) return backoff_max.take_error();
    if (*backoff_max < *backoff_min)
        return make_error(ExitCode::usage, "--backoff-max must not be below --backoff-min");
    auto heartbeat = seconds_option("--heartbeat", options.heartbeat_s, true);
    if (!heartbeat) return heartbeat.take_error();
    auto timeout = seconds_option("--timeout", options.timeout_s, false);
    if (!timeout) return timeout.take_error();
    config.session.backoff_min = *backoff_min;
    config.session.backoff_max = *backoff_max;
    config.session.heartbeat_interval = *heartbeat;
    config.ready_timeout = *timeout;
    return {};
}

[[nodiscard]] std::vector<const net::Url*> all_urls(const session::ClientSessionOptions& session) {
    std::vector<const net::Url*> urls{&session.url};
    for (const auto& url : session.other_urls) urls.push_back(&url);
    return urls;
}

// The pinned key (--backend-key, or the known_backends line for this URL), the CAs of
// --backend-ca, or trust on first use.
[[nodiscard]] Result<void> choose_backend_trust(const ConnectOptions& options, const std::filesystem::path& state_dir,
                                                BrokerConfig& config) {
    if (!options.backend_ca.empty()) {
        auto cas = load_gateway_cas(options.backend_ca);
        if (!cas) return cas.take_error();
        config.session.gateway_cas = std::move(cas.value());
        return {};
    }
    if (!options.backend_keys.empty()) {
        for (const auto& text : options.backend_keys) {
            auto key = identity::resolve_public_key(text);
            if (!key) {
                auto error = key.take_error();
                error.message = fmt::format("--backend-key: {}", error.message);
                return error;
            }
            config.session.pinned_server_keys.push_back(key->key);
        }
        return {};
    }
    // The gateways of a cluster share one key: what is recorded for any of their URLs is pinned for all.
    const auto file = state_dir / "known_backends";
    std::vector<crypto::PublicKey> pinned;
    for (const auto* url : all_urls(config.session)) {
        auto known = find_known_backends(file, canonical_url(*url));
        if (!known) return known.take_error();
        for (const auto& key : *known) {
            if (std::find(pinned.begin(), pinned.end(), key) == pinned.end()) pinned.push_back(key);
        }
    }
    if (!pinned.empty()) {
        config.session.pinned_server_keys = std::move(pinned);
        config.pinned_by_known_backends = file;
    } else {
        config.known_backends = file;
    }
    return {};
}

}  // namespace

Result<std::vector<crypto::PublicKey>> load_gateway_cas(const std::filesystem::path& file) {
    auto text = identity::read_public_file(file);
    if (!text) {
        auto error = text.take_error();
        error.message = fmt::format("--backend-ca: {}", error.message);
        return error;
    }
    std::vector<crypto::PublicKey> cas;
    std::size_t number = 0;
    std::string_view rest = *text;
    while (!rest.empty()) {
        const auto end = rest.find('\n');
        const auto line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
        ++number;
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string_view::npos || line[first] == '#') continue;
        auto key = identity::parse_public_key_line(line);
        if (!key)
            return make_error(ExitCode::bad_input, "--backend-ca {}:{}: {}", file.string(), number,
                              key.error().message);
        cas.push_back(key->key);
    }
    if (cas.empty())
        return make_error(ExitCode::bad_input,
                          "--backend-ca {}: no CA key in the file (expected 'aegis-ed25519 "
                          "<base64>' lines)",
                          file.string());
    return cas;
}

std::filesystem::path default_state_dir() {
    const char* state = std::getenv("XDG_STATE_HOME");
    if (state != nullptr && state[0] == '/') return std::filesystem::path(state) / "aegis";
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home != nullptr && home[0] != '\0' ? home : "/") / ".local" / "state" / "aegis";
}

Result<std::unique_ptr<PreparedBroker>> prepare_broker(const ConnectOptions& options) {
    if (options.backend_keys.empty() && !options.accept_new && options.backend_ca.empty()) {
        return make_error(ExitCode::usage, "--backend-key, --backend-ca or --accept-new is required");
    }
    if (!options.backend_ca.empty() && (!options.backend_keys.empty() || options.accept_new)) {
        return make_error(ExitCode::usage,
                          "--backend-ca trusts the gateway by its certificate; it cannot be combined "
                          "with --backend-key or --accept-new");
    }
    auto url = net::parse_url(options.url);
    if (!url) return url.take_error();

    BrokerConfig config;
    config.url_text = canonical_url(*url);
    config.session.url = *url;
    for (const auto& text : options.more_urls) {
        auto more = net::parse_url(text);
        if (!more) return more.take_error();
        if (more->tls != url->tls)
            return make_error(ExitCode::usage, "the gateway URLs of one cluster are all ws:// or all wss://: {} and {}",
                              options.url, text);
        config.url_text += " or " + canonical_url(*more);
        config.session.other_urls.push_back(std::move(more.value()));
    }
    // --proxy wins; otherwise https_proxy/http_proxy and no_proxy, as curl reads them.
    config.session.transport.proxy =
        options.proxy.empty() ? net::proxy_from_environment(*url, net::process_environment()) : options.proxy;
    // A proxy that cannot be used is a usage error now, not a retry until --timeout.
    if (!config.session.transport.proxy.empty()) {
        if (auto proxy = net::parse_proxy_url(config.session.transport.proxy); !proxy) {
            auto error = proxy.take_error();
            error.message =
                fmt::format("{}: {}", options.proxy.empty() ? "https_proxy/http_proxy" : "--proxy", error.message);
            return error;
        }
    }
    if (!options.ca_file.empty()) {
        if (!url->tls) return make_error(ExitCode::usage, "--ca-file is for wss:// URLs; {} is ws://", options.url);
        config.session.transport.tls_ca_file = std::filesystem::absolute(options.ca_file).string();
    }
    config.ready_when_listening = options.no_wait;
    if (auto timings = apply_timings(options, config); !timings) return timings.take_error();

    const auto key_path = options.identity.value_or(identity::default_key_path());
    auto loaded = identity::load_secret_key(key_path);
    if (!loaded) return loaded.take_error();
    // KEY-cert.pub beside the key is sent with it, as ssh does (aegis-connect(1), CERTIFICATES).
    auto certificate = identity::load_certificate_beside(key_path, loaded->key.public_key());
    if (!certificate) return certificate.take_error();
    config.session.certificate = std::move(certificate.value());

    // Absolute: the detached broker changes to "/", where a relative path would name another file.
    const auto state_dir = std::filesystem::absolute(
        options.state_dir.empty() ? default_state_dir() : std::filesystem::path(options.state_dir));
    if (auto made = store::prepare_state_directory(state_dir); !made) return made.take_error();
    // The other files the broker writes there; queue.db and its log are checked as they are opened.
    if (auto known = store::check_private_file(state_dir / "known_backends"); !known) return known.take_error();
    if (options.log_file.empty()) {
        if (auto log = store::check_private_file(state_dir / "broker.log"); !log) return log.take_error();
    }
    if (auto trust = choose_backend_trust(options, state_dir, config); !trust) return trust.take_error();
    if (options.queue_max_messages == 0 || options.queue_max_bytes == 0) {
        return make_error(ExitCode::usage, "--queue-max-messages and --queue-max-bytes must be positive");
    }
    config.queue_limits.max_messages = static_cast<std::size_t>(options.queue_max_messages);
    config.queue_limits.max_bytes = options.queue_max_bytes;
    if (options.cursor_max_messages == 0 || options.cursor_max_messages > 1'000'000'000) {
        return make_error(ExitCode::usage, "--cursor-max-messages must be from 1 to 1000000000");
    }
    config.inbox_limits.max_per_cursor = static_cast<std::size_t>(options.cursor_max_messages);
    if (options.max_attempts > 1'000'000) return make_error(ExitCode::usage, "--max-attempts must be at most 1000000");
    config.max_attempts = static_cast<std::uint32_t>(options.max_attempts);
    if (!protocol::known_batch_format(options.batch_format))
        return make_error(ExitCode::usage, "--batch-format must be 1 or 2");
    config.batch_format = static_cast<std::uint8_t>(options.batch_format);
    config.state_file = state_dir / "queue.db";
    // Checked here, in the foreground, so a bad file fails the command instead of the daemon.
    if (auto usable = check_state_file(config.state_file); !usable) return usable.take_error();

    config.socket = std::filesystem::absolute(ipc::resolve_socket_path(options.socket));
    if (!options.socket_group.empty()) {
        auto group = ipc::lookup_group(options.socket_group);
        if (!group) return group.take_error();
        config.socket_group = *group;
    }
    if (auto ready = ipc::prepare_socket_directory(config.socket, config.socket_group); !ready)
        return ready.take_error();
    if (auto claimed = ipc::claim_socket_path(config.socket); !claimed) return claimed.take_error();

    auto prepared = std::make_unique<PreparedBroker>(PreparedBroker{
        std::move(*loaded), std::move(config), state_dir,
        options.log_file.empty() ? state_dir / "broker.log" : std::filesystem::absolute(options.log_file)});
    prepared->config.session.identity = &prepared->identity.key;
    return prepared;
}

}  // namespace aegis::broker
