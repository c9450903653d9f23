// Error codes from the network stack as typed Errors with messages a person can act on.

#include "net/transport_error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

namespace aegis::net {
namespace {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;

[[nodiscard]] std::string describe_tls(const boost::system::error_code& ec) {
    if (ec == asio::ssl::error::stream_truncated) return "TLS stream truncated (peer closed without close_notify)";
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) return "TLS certificate verify failed";
    const char* text = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return fmt::format("TLS error: {}", text != nullptr ? text : ec.message());
}

}  // namespace

std::string describe(const boost::system::error_code& ec) {
    if (ec.category() == asio::error::get_ssl_category() || ec.category() == asio::ssl::error::get_stream_category())
        return describe_tls(ec);
    if (ec == asio::error::connection_refused) return "connection refused";
    if (ec == asio::error::connection_reset) return "connection reset by peer";
    if (ec == asio::error::host_unreachable) return "host unreachable";
    if (ec == asio::error::network_unreachable) return "network unreachable";
    if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again || ec == asio::error::no_data)
        return "host name not found";
    if (ec == asio::error::eof || ec == boost::beast::http::error::end_of_stream) return "connection closed by peer";
    if (ec == websocket::error::closed) return "closed by peer";
    if (ec == websocket::error::upgrade_declined) return "server declined the WebSocket upgrade";
    if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) return "message too large";
    if (is_timeout(ec)) return "timed out";
    return ec.message();
}

bool is_timeout(const boost::system::error_code& ec) {
    return ec == boost::beast::error::timeout || ec == asio::error::timed_out;
}

Error connect_error(std::string_view authority, const boost::system::error_code& ec) {
    const auto exit = is_timeout(ec) ? ExitCode::timeout : ExitCode::unreachable;
    return make_error(exit, "cannot reach {}: {}", authority, describe(ec));
}

Error connection_error(std::string_view peer, const boost::system::error_code& ec, std::string_view close_reason,
                       std::size_t max_message_bytes) {
    if (is_timeout(ec)) return make_error(ExitCode::timeout, "connection to {} timed out (no answer to ping)", peer);
    if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow)
        return make_error(ExitCode::bad_input, "connection to {} closed: message too large (over {} bytes)", peer,
                          max_message_bytes);
    if (ec == websocket::error::closed) {
        if (close_reason.empty()) return make_error(ExitCode::unreachable, "connection to {} closed by peer", peer);
        return make_error(ExitCode::unreachable, "connection to {} closed by peer ({})", peer, close_reason);
    }
    return make_error(ExitCode::unreachable, "connection to {} lost: {}", peer, describe(ec));
}

}  // namespace aegis::net
