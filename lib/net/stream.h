#pragma once
// The two transport stacks (plain TCP and TLS over TCP) under a WebSocket, and the one
// connection implementation templated over them (internal to lib/net).

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <type_traits>

#include "net/websocket.h"

namespace aegis::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <typename Stream>
using WsStream = websocket::stream<Stream>;

template <typename Stream>
inline constexpr bool is_tls_v = std::is_same_v<Stream, TlsStream>;

struct ConnectionSettings {
    Limits limits;
    std::string peer;                  // host:port shown in messages and by peer()
    std::shared_ptr<void> keep_alive;  // what the stream needs to outlive it (the TLS context)
    std::shared_ptr<void> lease;       // released when the connection ends (the server's live count)
};

// Takes over an upgraded WebSocket; the stream's executor must be the connection's strand.
template <typename Stream>
[[nodiscard]] std::shared_ptr<Connection> make_connection(WsStream<Stream> ws, ConnectionSettings settings);

extern template std::shared_ptr<Connection> make_connection<PlainStream>(WsStream<PlainStream>, ConnectionSettings);
extern template std::shared_ptr<Connection> make_connection<TlsStream>(WsStream<TlsStream>, ConnectionSettings);

// "aegis/<version>", sent as User-Agent and Server.
[[nodiscard]] inline std::string product_name() {
    return std::string("aegis/") + AEGIS_VERSION;
}

}  // namespace aegis::net
