#include "net/proxy_env.h"

#include <catch2/catch.hpp>
#include <map>

using namespace aegis;

namespace {
net::EnvironmentLookup fake(std::map<std::string, std::string> values) {
    return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
        const auto found = values.find(std::string(name));
        if (found == values.end()) return std::nullopt;
        return found->second;
    };
}
net::Url url(std::string_view text) {
    return net::parse_url(text).value();
}
}  // namespace

TEST_CASE("the proxy comes from https_proxy for wss and http_proxy for ws", "[net][proxy]") {
    const auto env = fake({{"https_proxy", "http://secure:3128"}, {"HTTP_PROXY", "http://plain:8080"}});
    CHECK(net::proxy_from_environment(url("wss://gw.example.com/aegis"), env) == "http://secure:3128");
    CHECK(net::proxy_from_environment(url("ws://gw.example.com/aegis"), env) == "http://plain:8080");
    CHECK(net::proxy_from_environment(url("wss://gw.example.com"), fake({})).empty());
}

TEST_CASE("lower-case proxy variables win over upper-case ones", "[net][proxy]") {
    const auto env = fake({{"https_proxy", "http://lower:1"}, {"HTTPS_PROXY", "http://upper:2"}});
    CHECK(net::proxy_from_environment(url("wss://gw.example.com"), env) == "http://lower:1");
}

TEST_CASE("loopback and no_proxy hosts connect directly", "[net][proxy]") {
    const auto env = fake({{"https_proxy", "http://p:1"},
                           {"http_proxy", "http://p:1"},
                           {"no_proxy", " internal.example, .corp.example:443 ,10.1.2.3"}});
    CHECK(net::proxy_from_environment(url("wss://127.0.0.1:8443"), env).empty());
    CHECK(net::proxy_from_environment(url("ws://localhost:8443"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://[::1]:8443"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://internal.example"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://gw.internal.example"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://gw.corp.example"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://10.1.2.3"), env).empty());
    CHECK(net::proxy_from_environment(url("wss://notinternal.example"), env) == "http://p:1");
    CHECK(net::proxy_from_environment(url("wss://gw.example.com"), env) == "http://p:1");
    CHECK(net::proxy_from_environment(url("wss://gw.example.com"),
                                      fake({{"https_proxy", "http://p:1"}, {"NO_PROXY", "*"}}))
              .empty());
}
