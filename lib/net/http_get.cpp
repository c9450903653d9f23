#include "net/http_get.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

namespace aegis::net {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxReplyBytes = 64 * 1024 * 1024;

Error failed(const HttpAddress& address, std::string_view step, const boost::system::error_code& error) {
    const bool late = error == beast::error::timeout || error == asio::error::operation_aborted;
    return make_error(late ? ExitCode::timeout : ExitCode::failure, "{} {}:{}: {}", step, address.host, address.port,
                      late ? std::string("timed out") : error.message());
}

}  // namespace

Result<HttpAddress> parse_admin_address(std::string_view text) {
    std::string_view rest = text;
    if (rest.rfind("https://", 0) == 0)
        return make_error(ExitCode::usage, "'{}': the admin endpoint is plain HTTP: use http://HOST:PORT", text);
    if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    HttpAddress out;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return make_error(ExitCode::usage, "'{}' is not http://HOST:PORT", text);
        out.host = std::string(rest.substr(1, close - 1));
        port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || rest.find('/') != std::string_view::npos)
            return make_error(ExitCode::usage, "'{}' is not http://HOST:PORT", text);
        out.host = std::string(rest.substr(0, colon));
        port = rest.substr(colon + 1);
    }
    unsigned value = 0;
    if (port.empty() || port.size() > 5) return make_error(ExitCode::usage, "'{}': the port must be 1-65535", text);
    for (const char c : port) {
        if (c < '0' || c > '9') return make_error(ExitCode::usage, "'{}': the port must be 1-65535", text);
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return make_error(ExitCode::usage, "'{}': the port must be 1-65535", text);
    out.port = std::string(port);
    return out;
}

Result<HttpReply> http_get(const HttpAddress& address, std::string_view target, std::chrono::milliseconds timeout) {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    beast::flat_buffer buffer;
    http::request<http::empty_body> request{http::verb::get, std::string(target), 11};
    request.set(http::field::host, address.host);
    request.set(http::field::connection, "close");
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    std::optional<Result<HttpReply>> outcome;

    resolver.async_resolve(
        address.host, address.port, [&](boost::system::error_code error, const tcp::resolver::results_type& endpoints) {
            if (error) {
                outcome = make_error(ExitCode::failure, "cannot resolve {}: {}", address.host, error.message());
                return;
            }
            stream.expires_after(timeout);
            stream.async_connect(endpoints, [&](boost::system::error_code connected, const tcp::endpoint&) {
                if (connected) {
                    outcome = failed(address, "cannot connect to", connected);
                    return;
                }
                http::async_write(stream, request, [&](boost::system::error_code sent, std::size_t) {
                    if (sent) {
                        outcome = failed(address, "cannot send to", sent);
                        return;
                    }
                    http::async_read(stream, buffer, parser, [&](boost::system::error_code read, std::size_t) {
                        if (read) {
                            outcome = failed(address, "no answer from", read);
                            return;
                        }
                        outcome = HttpReply{static_cast<int>(parser.get().result_int()), parser.get().body()};
                    });
                });
            });
        });
    io.run_for(timeout + std::chrono::milliseconds(100));  // the stream's own deadline comes first
    if (!outcome) {
        stream.close();
        return make_error(ExitCode::timeout, "no answer from {}:{} within {} ms", address.host, address.port,
                          timeout.count());
    }
    return std::move(*outcome);
}

}  // namespace aegis::net
