#include "net/server_tls.h"

#include <boost/asio/ssl/context.hpp>

#include "net/transport_error.h"

namespace aegis::net {

namespace ssl = boost::asio::ssl;

// The files are loaded as Server::listen loads them (net/server.cpp), with the same errors.
Result<void> check_server_tls(const ServerOptions& options) {
    if (options.tls_cert_file.empty() && options.tls_key_file.empty()) return {};
    if (options.tls_cert_file.empty() || options.tls_key_file.empty())
        return make_error(ExitCode::usage, "TLS needs both a certificate file and a key file");
    ssl::context context(ssl::context::tls_server);
    boost::system::error_code ec;
    context.use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec)
        return make_error(ExitCode::bad_input, "cannot load TLS certificate '{}': {}", options.tls_cert_file,
                          describe(ec));
    context.use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
    if (ec) return make_error(ExitCode::bad_input, "cannot load TLS key '{}': {}", options.tls_key_file, describe(ec));
    return {};
}

}  // namespace aegis::net
