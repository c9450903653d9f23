#include "net/proxy_env.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace aegis::net {
namespace {

[[nodiscard]] std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

[[nodiscard]] std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

[[nodiscard]] bool is_loopback(std::string_view host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.") || host.ends_with(".localhost");
}

// no_proxy entries: "*", a host, ".suffix" or "suffix" (matching the host and its subdomains),
// optionally with ":port" (ignored, as most tools do).
[[nodiscard]] bool excluded(std::string_view host, std::string_view no_proxy) {
    while (!no_proxy.empty()) {
        const auto comma = no_proxy.find(',');
        auto entry = trim(no_proxy.substr(0, comma));
        no_proxy = comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        if (entry.front() != '[') entry = entry.substr(0, entry.find(':'));
        if (entry.starts_with('[')) entry = entry.substr(1, entry.find(']') - 1);
        if (entry.starts_with('.')) entry.remove_prefix(1);
        const auto pattern = lower(entry);
        if (host == pattern) return true;
        if (host.size() > pattern.size() && host.ends_with(pattern) && host[host.size() - pattern.size() - 1] == '.')
            return true;
    }
    return false;
}

[[nodiscard]] std::optional<std::string> first_set(const EnvironmentLookup& environment,
                                                   std::initializer_list<std::string_view> names) {
    for (const auto name : names) {
        if (auto value = environment(name); value && !trim(*value).empty()) return std::string(trim(*value));
    }
    return std::nullopt;
}

}  // namespace

EnvironmentLookup process_environment() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

std::string proxy_from_environment(const Url& url, const EnvironmentLookup& environment) {
    const auto host = lower(url.host);
    if (is_loopback(host)) return {};
    if (auto no_proxy = first_set(environment, {"no_proxy", "NO_PROXY"}); no_proxy && excluded(host, *no_proxy))
        return {};
    const auto proxy = url.tls ? first_set(environment, {"https_proxy", "HTTPS_PROXY"})
                               : first_set(environment, {"http_proxy", "HTTP_PROXY"});
    return proxy.value_or(std::string{});
}

}  // namespace aegis::net
