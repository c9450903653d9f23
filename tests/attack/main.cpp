// aegis-attack: attacks on a running gateway or broker, for tests/cli/attack_test.sh.
//
//   aegis-attack ATTACK [options]
//
// ATTACK is one of handshake-replay, record-tampering, oversize-handshake, oversize-session,
// hanging-handshakes, connection-flood, channel-access, hostile-gateway, forged-publish. Each
// prints one line per check ("ok: ..." / "FAIL: ...") and exits 0 only when the target refused
// the attack as it must (forged-publish: refused, or left to the receivers when the gateway
// does not verify signatures).

#include <boost/program_options.hpp>
#include <cstdio>
#include <functional>
#include <map>

#include "attacks.h"
#include "identity/keyfile.h"

namespace po = boost::program_options;
namespace attack = aegis::attack;
namespace identity = aegis::identity;

namespace {

int usage(const std::string& why) {
    std::fprintf(stderr, "aegis-attack: error: %s\n", why.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    const std::map<std::string, std::function<int(const attack::Options&)>> attacks{
        {"handshake-replay", attack::handshake_replay},     {"record-tampering", attack::record_tampering},
        {"oversize-handshake", attack::oversize_handshake}, {"oversize-session", attack::oversize_session},
        {"hanging-handshakes", attack::hanging_handshakes}, {"connection-flood", attack::connection_flood},
        {"channel-access", attack::channel_access},         {"hostile-gateway", attack::hostile_gateway},
        {"forged-publish", attack::forged_publish},
    };
    if (argc < 2 || attacks.count(argv[1]) == 0) return usage("the first argument names the attack");

    attack::Options options;
    std::string identity_file, other_identity_file, gateway_key_file, ready_file, port_file;
    unsigned port = 0, handshake_secs = 0, timeout_secs = 20;
    po::options_description described("options");
    described.add_options()("port", po::value(&port), "the gateway's port on 127.0.0.1")(
        "identity", po::value(&identity_file), "secret key: the attacking agent, or the hostile gateway's key")(
        "id", po::value(&options.agent_id),
        "the id the gateway assigns --identity (hostile gateway: the id it grants)")(
        "other-identity", po::value(&other_identity_file), "secret key of another identity")(
        "other-id", po::value(&options.other_id), "its id")("gateway-key", po::value(&gateway_key_file),
                                                            "the gateway's public key (pinned)")(
        "gateway-pid", po::value(&options.gateway_pid), "the gateway's pid, to sample its VmRSS")(
        "connections", po::value(&options.connections), "WebSocket connections (or rounds)")(
        "tcp-connections", po::value(&options.tcp_connections), "bare TCP connections")(
        "hello-connections", po::value(&options.hello_connections), "of --connections, those sending a ClientHello")(
        "bytes", po::value(&options.bytes), "bytes offered per connection")(
        "max-message-bytes", po::value(&options.max_message_bytes), "the gateway's --max-message-bytes")(
        "max-connections", po::value(&options.max_connections), "connections the gateway may hold at once")(
        "max-rss-growth-mib", po::value(&options.max_rss_growth_mib), "bound on the gateway's VmRSS growth")(
        "handshake-timeout", po::value(&handshake_secs), "the gateway's --handshake-timeout, seconds")(
        "timeout", po::value(&timeout_secs), "bound on the whole attack, seconds")(
        "ready-file", po::value(&ready_file), "created once the attack is in place")(
        "port-file", po::value(&port_file), "hostile gateway: where it writes its port")(
        "listen", po::value(&options.listen), "hostile gateway: HOST:PORT")(
        "gateway-verifies", po::bool_switch(&options.gateway_verifies),
        "forged publish: the gateway verifies signatures, so it must refuse the forgeries");
    try {
        po::variables_map values;
        po::store(po::parse_command_line(argc - 1, argv + 1, described), values);
        po::notify(values);
    } catch (const po::error& error) {
        return usage(error.what());
    }
    options.port = static_cast<std::uint16_t>(port);
    options.handshake_timeout = attack::Ms(handshake_secs * 1000LL);
    options.timeout = attack::Ms(timeout_secs * 1000LL);
    options.ready_file = ready_file;
    options.port_file = port_file;
    if (!identity_file.empty()) {
        auto loaded = identity::load_secret_key(identity_file);
        if (!loaded) return usage(loaded.error().message);
        options.identity.emplace(std::move(loaded->key));
    }
    if (!other_identity_file.empty()) {
        auto loaded = identity::load_secret_key(other_identity_file);
        if (!loaded) return usage(loaded.error().message);
        options.other_identity.emplace(std::move(loaded->key));
    }
    if (!gateway_key_file.empty()) {
        auto loaded = identity::resolve_public_key(gateway_key_file);
        if (!loaded) return usage(loaded.error().message);
        options.gateway_key = loaded->key;
    }
    const std::string name = argv[1];
    const bool needs_identity =
        name != "hanging-handshakes" && name != "connection-flood" && name != "oversize-handshake";
    if (needs_identity && !options.identity) return usage(name + " needs --identity");
    if ((name == "channel-access" || name == "hostile-gateway") && !options.other_identity)
        return usage(name + " needs --other-identity");
    return attacks.at(name)(options);
}
