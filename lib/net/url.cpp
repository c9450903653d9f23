// Parsing of ws:// and wss:// URLs, listen addresses and proxy URLs.

#include <algorithm>
#include <boost/asio/ip/address_v6.hpp>
#include <cctype>
#include <charconv>
#include <optional>

#include "net/address.h"
#include "net/websocket.h"

namespace aegis::net {
namespace {

struct Authority {
    std::string host;          // lower case, without brackets
    std::string host_written;  // with brackets for IPv6
    std::string port_written;  // empty when absent
};

[[nodiscard]] std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

[[nodiscard]] bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && lower(text.substr(0, prefix.size())) == prefix;
}

[[nodiscard]] bool is_host_name(std::string_view host) {
    return std::all_of(host.begin(), host.end(),
                       [](unsigned char c) { return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_'; });
}

[[nodiscard]] std::optional<unsigned> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    unsigned value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || value > 65535) return std::nullopt;
    return value;
}

// HOST[:PORT] or [IPV6][:PORT]; `what` names the text in error messages.
[[nodiscard]] Result<Authority> parse_authority(std::string_view authority, std::string_view what) {
    if (authority.find('@') != std::string_view::npos)
        return make_error(ExitCode::usage, "{}: user information (user@host) is not supported", what);
    Authority out;
    std::string_view rest;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return make_error(ExitCode::usage, "{}: missing ']' after IPv6 address", what);
        const auto inside = authority.substr(1, close - 1);
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address_v6(std::string(inside), ec);
        if (inside.empty() || ec) return make_error(ExitCode::usage, "{}: '{}' is not an IPv6 address", what, inside);
        out.host = address.to_string();  // RFC 5952 form: one spelling per address in server_name
        out.host_written = fmt::format("[{}]", out.host);
        rest = authority.substr(close + 1);
        if (!rest.empty() && rest.front() != ':')
            return make_error(ExitCode::usage, "{}: unexpected text after IPv6 address", what);
    } else {
        const auto colon = authority.find(':');
        const auto host = authority.substr(0, colon);
        if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
            return make_error(ExitCode::usage, "{}: an IPv6 address needs brackets, as in [::1]:8443", what);
        if (host.empty()) return make_error(ExitCode::usage, "{}: missing host", what);
        if (!is_host_name(host)) return make_error(ExitCode::usage, "{}: '{}' is not a valid host name", what, host);
        out.host = lower(host);
        out.host_written = out.host;
        rest = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
    }
    if (!rest.empty()) {
        out.port_written = std::string(rest.substr(1));
        if (!parse_port(out.port_written))
            return make_error(ExitCode::usage, "{}: '{}' is not a port number (0-65535)", what, out.port_written);
    }
    return out;
}

[[nodiscard]] std::string normalised_port(std::string_view written) {
    return std::to_string(*parse_port(written));
}

}  // namespace

Result<Url> parse_url(std::string_view text) {
    const auto what = fmt::format("URL '{}'", text);
    Url url;
    std::string_view rest;
    if (starts_with_nocase(text, "wss://")) {
        url.tls = true;
        rest = text.substr(6);
    } else if (starts_with_nocase(text, "ws://")) {
        rest = text.substr(5);
    } else {
        return make_error(ExitCode::usage, "{}: expected ws://HOST[:PORT][/PATH] or wss://HOST[:PORT][/PATH]", what);
    }
    if (rest.find('#') != std::string_view::npos)
        return make_error(ExitCode::usage, "{}: a WebSocket URL cannot have a fragment (#)", what);
    if (std::any_of(rest.begin(), rest.end(), [](unsigned char c) { return c <= ' ' || c >= 0x7f; }))
        return make_error(ExitCode::usage, "{}: spaces and control characters are not allowed", what);

    const auto authority_end = rest.find_first_of("/?");
    auto authority = parse_authority(rest.substr(0, authority_end), what);
    if (!authority) return authority.take_error();
    if (!authority->port_written.empty() && *parse_port(authority->port_written) == 0)
        return make_error(ExitCode::usage, "{}: port 0 cannot be connected to", what);

    url.host = authority->host;
    url.port = authority->port_written.empty() ? (url.tls ? "443" : "80") : normalised_port(authority->port_written);
    if (authority_end != std::string_view::npos) {
        const auto target = rest.substr(authority_end);
        url.target = target.front() == '?' ? fmt::format("/{}", target) : std::string(target);
    }
    const auto path = std::string_view(url.target).substr(0, url.target.find('?'));
    url.server_name = authority->host_written;
    if (!authority->port_written.empty()) url.server_name += ":" + url.port;
    if (path != "/") url.server_name += path;
    return url;
}

Result<HostPort> parse_listen_address(std::string_view text) {
    const auto what = fmt::format("listen address '{}'", text);
    auto authority = parse_authority(text, what);
    if (!authority) return authority.take_error();
    if (authority->port_written.empty()) return make_error(ExitCode::usage, "{}: expected HOST:PORT", what);
    return HostPort{authority->host, normalised_port(authority->port_written)};
}

// The URL with any user:password@ replaced by "***@", for messages: a proxy password is a secret.
[[nodiscard]] static std::string without_user_info(std::string_view text) {
    const auto scheme = text.find("://");
    const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const auto at = text.find('@', start);
    if (at == std::string_view::npos || text.substr(start, at - start).find('/') != std::string_view::npos)
        return std::string(text);
    return fmt::format("{}***{}", text.substr(0, start), text.substr(at));
}

Result<HostPort> parse_proxy_url(std::string_view text) {
    const auto what = fmt::format("proxy '{}'", without_user_info(text));
    if (!starts_with_nocase(text, "http://"))
        return make_error(ExitCode::usage, "{}: expected http://HOST:PORT (an HTTP CONNECT proxy)", what);
    auto rest = text.substr(7);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#") != std::string_view::npos)
        return make_error(ExitCode::usage, "{}: expected http://HOST:PORT without a path", what);
    auto authority = parse_authority(rest, what);
    if (!authority) return authority.take_error();
    const auto port = authority->port_written.empty() ? std::string("80") : normalised_port(authority->port_written);
    if (port == "0") return make_error(ExitCode::usage, "{}: port 0 cannot be connected to", what);
    return HostPort{authority->host, port};
}

std::string format_authority(std::string_view host, std::string_view port) {
    if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

}  // namespace aegis::net
