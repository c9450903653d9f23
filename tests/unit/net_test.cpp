// lib/net over real sockets on 127.0.0.1: each test runs its own io_context for a bounded time.

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/address.h"
#include "net/websocket.h"

namespace {

namespace asio = boost::asio;
namespace net = aegis::net;
using aegis::Bytes;
using aegis::Error;
using aegis::ExitCode;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Runs the io_context until `done` holds or `limit` passes; false on timeout.
bool run_until(asio::io_context& io, const std::function<bool()>& done, milliseconds limit = milliseconds(10'000)) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
        const auto now = Clock::now();
        if (now >= deadline) return false;
        if (io.stopped()) io.restart();
        const auto slice = std::min<Clock::duration>(deadline - now, milliseconds(20));
        if (io.run_one_for(slice) == 0 && io.stopped()) std::this_thread::sleep_for(milliseconds(1));
    }
    return true;
}

Bytes pattern(std::size_t size, std::uint8_t seed) {
    Bytes out(size);
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 31);
    return out;
}

// One end of a WebSocket as a test sees it: what arrived and how it ended.
struct Peer {
    std::shared_ptr<net::Connection> connection;
    std::optional<Error> connect_error;
    std::vector<Bytes> received;
    std::optional<Error> closed;
    int close_calls = 0;
    bool echo = false;

    void attach(std::shared_ptr<net::Connection> c) {
        connection = std::move(c);
        std::weak_ptr<net::Connection> weak = connection;
        connection->start(
            [this, weak](Bytes message) {
                if (auto self = weak.lock(); self && echo) self->send(message);
                received.push_back(std::move(message));
            },
            [this](const Error& why) {
                closed = why;
                ++close_calls;
            });
    }
    [[nodiscard]] bool connected() const { return connection != nullptr; }
    [[nodiscard]] bool settled() const { return connection != nullptr || connect_error.has_value(); }
};

void dial(asio::io_context& io, Peer& peer, const std::string& url, const net::ClientOptions& options = {}) {
    auto parsed = net::parse_url(url);
    REQUIRE(parsed.ok());
    net::connect(io, *parsed, options, [&peer](aegis::Result<std::shared_ptr<net::Connection>> result) {
        if (!result) {
            peer.connect_error = result.error();
        } else {
            peer.attach(std::move(result.value()));
        }
    });
}

struct TestServer {
    std::unique_ptr<net::Server> server;
    std::vector<std::unique_ptr<Peer>> peers;  // stable addresses for the handlers
    bool start = true;
    bool echo = true;
    std::vector<std::pair<std::string, std::string>> refused;  // (reason, detail) of on_refused

    std::optional<Error> try_listen(asio::io_context& io, net::ServerOptions options) {
        if (!options.on_refused) {
            options.on_refused = [this](std::string_view reason, std::string_view, std::string_view detail) {
                refused.emplace_back(reason, detail);
            };
        }
        auto result = net::Server::listen(io, options, [this](std::shared_ptr<net::Connection> connection) {
            auto& peer = *peers.emplace_back(std::make_unique<Peer>());
            peer.echo = echo;
            if (start) {
                peer.attach(std::move(connection));
            } else {
                peer.connection = std::move(connection);
            }
        });
        if (!result) return result.error();
        server = std::move(result.value());
        return std::nullopt;
    }
    void listen(asio::io_context& io, const net::ServerOptions& options) {
        const auto error = try_listen(io, options);
        INFO((error ? error->message : std::string()));
        REQUIRE_FALSE(error);
    }
    [[nodiscard]] std::string url(std::string_view scheme = "ws", std::string_view host = "127.0.0.1") const {
        return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(server->port()) + "/aegis";
    }
};

net::ServerOptions local_server(std::string listen = "127.0.0.1:0") {
    net::ServerOptions options;
    options.listen = std::move(listen);
    return options;
}

// A raw HTTP exchange: write the request, read until the server closes.
struct RawExchange : std::enable_shared_from_this<RawExchange> {
    explicit RawExchange(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    std::string request;
    std::string response;
    bool done = false;

    static std::shared_ptr<RawExchange> run(asio::io_context& io, std::uint16_t port, std::string request) {
        auto exchange = std::make_shared<RawExchange>(io);
        exchange->request = std::move(request);
        exchange->socket.async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [exchange](boost::system::error_code ec) {
                if (ec) {
                    exchange->done = true;
                    return;
                }
                asio::async_write(
                    exchange->socket, asio::buffer(exchange->request),
                    [exchange](boost::system::error_code, std::size_t) {
                        asio::async_read(exchange->socket, asio::dynamic_buffer(exchange->response),
                                         [exchange](boost::system::error_code, std::size_t) { exchange->done = true; });
                    });
            });
        return exchange;
    }
};

// A tiny HTTP CONNECT proxy: answers `status`, and for 200 shuttles bytes both ways.
class TestProxy {
public:
    TestProxy(asio::io_context& io, int status)
        : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), status_(status) {
        accept();
    }
    [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
    std::vector<std::string> requests;
    int tunnels = 0;

private:
    struct Tunnel : std::enable_shared_from_this<Tunnel> {
        Tunnel(asio::io_context& io, tcp::socket socket, TestProxy& owner)
            : client(std::move(socket)), upstream(io), proxy(owner) {}
        tcp::socket client;
        tcp::socket upstream;
        TestProxy& proxy;
        asio::streambuf head;
        std::string reply;
        std::array<char, 16384> upward{};
        std::array<char, 16384> downward{};

        void start() {
            asio::async_read_until(client, head, "\r\n\r\n",
                                   [self = shared_from_this()](boost::system::error_code ec, std::size_t size) {
                                       if (!ec) self->on_head(size);
                                   });
        }

        void on_head(std::size_t size) {
            const std::string text(asio::buffers_begin(head.data()), asio::buffers_begin(head.data()) + size);
            head.consume(size);
            proxy.requests.push_back(text);
            if (proxy.status_ != 200) return answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", false);
            const auto first_space = text.find(' ');
            const auto authority = text.substr(first_space + 1, text.find(' ', first_space + 1) - first_space - 1);
            const auto colon = authority.rfind(':');
            const auto port = static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
            const tcp::endpoint target(asio::ip::make_address(authority.substr(0, colon)), port);
            upstream.async_connect(target, [self = shared_from_this()](boost::system::error_code ec) {
                if (ec) return self->answer("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", false);
                ++self->proxy.tunnels;
                self->answer("HTTP/1.1 200 Connection established\r\n\r\n", true);
            });
        }

        void answer(std::string text, bool tunnel) {
            reply = std::move(text);
            asio::async_write(client, asio::buffer(reply),
                              [self = shared_from_this(), tunnel](boost::system::error_code ec, std::size_t) {
                                  if (ec || !tunnel) {
                                      self->client.close(ec);
                                      return;
                                  }
                                  self->pump(self->client, self->upstream, self->upward);
                                  self->pump(self->upstream, self->client, self->downward);
                              });
        }

        void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buffer) {
            from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                           boost::system::error_code ec, std::size_t size) {
                if (ec) {
                    to.shutdown(tcp::socket::shutdown_send, ec);
                    return;
                }
                asio::async_write(to, asio::buffer(buffer.data(), size),
                                  [self, &from, &to, &buffer](boost::system::error_code write_ec, std::size_t) {
                                      if (!write_ec) self->pump(from, to, buffer);
                                  });
            });
        }
    };

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
            if (ec) return;
            std::make_shared<Tunnel>(io_, std::move(socket), *this)->start();
            accept();
        });
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    int status_;
};

// A throwaway directory with a self-signed certificate for localhost; empty when openssl is missing.
struct TestCertificate {
    std::filesystem::path dir;
    std::filesystem::path cert;
    std::filesystem::path key;

    static std::optional<TestCertificate> make() {
        if (std::system("command -v openssl >/dev/null 2>&1") != 0) return std::nullopt;
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-net-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) return std::nullopt;
        TestCertificate out{pattern, std::filesystem::path(pattern) / "cert.pem",
                            std::filesystem::path(pattern) / "key.pem"};
        const auto command =
            "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1"
            " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" +
            out.key.string() + "' -out '" + out.cert.string() + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) return std::nullopt;
        return out;
    }
    ~TestCertificate() {
        std::error_code ec;
        if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
    TestCertificate(std::filesystem::path d, std::filesystem::path c, std::filesystem::path k)
        : dir(std::move(d)), cert(std::move(c)), key(std::move(k)) {}
    TestCertificate(TestCertificate&& other) noexcept
        : dir(std::exchange(other.dir, {})), cert(std::move(other.cert)), key(std::move(other.key)) {}
    TestCertificate(const TestCertificate&) = delete;
    TestCertificate& operator=(const TestCertificate&) = delete;
    TestCertificate& operator=(TestCertificate&&) = delete;
};

std::uint16_t unused_port(asio::io_context& io) {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return probe.local_endpoint().port();  // closed again when probe goes out of scope
}

// Sends `messages` from the client and waits until the echo server returned all of them.
void require_echo(asio::io_context& io, Peer& client, const std::vector<Bytes>& messages) {
    const auto before = client.received.size();
    for (const auto& message : messages) REQUIRE(client.connection->send(message));
    REQUIRE(run_until(io, [&] { return client.received.size() == before + messages.size() || client.closed; }));
    REQUIRE_FALSE(client.closed);
    for (std::size_t i = 0; i < messages.size(); ++i) REQUIRE(client.received[before + i] == messages[i]);
}

}  // namespace

TEST_CASE("parse_url accepts ws and wss URLs", "[net]") {
    struct Case {
        const char* text;
        bool tls;
        const char* host;
        const char* port;
        const char* target;
        const char* server_name;
    };
    const Case cases[] = {
        {"ws://example.com", false, "example.com", "80", "/", "example.com"},
        {"ws://example.com/", false, "example.com", "80", "/", "example.com"},
        {"wss://example.com", true, "example.com", "443", "/", "example.com"},
        {"wss://Gateway.Example.COM:8443/aegis?v=1", true, "gateway.example.com", "8443", "/aegis?v=1",
         "gateway.example.com:8443/aegis"},
        {"WSS://h:443/a/b", true, "h", "443", "/a/b", "h:443/a/b"},
        {"ws://h?x=1", false, "h", "80", "/?x=1", "h"},
        {"ws://h:0080/p", false, "h", "80", "/p", "h:80/p"},
        {"ws://h/p/", false, "h", "80", "/p/", "h/p/"},
        {"wss://[0:0::0001]:08443", true, "::1", "8443", "/", "[::1]:8443"},
        {"wss://[::1]:9000/p", true, "::1", "9000", "/p", "[::1]:9000/p"},
        {"wss://[2001:DB8::1]", true, "2001:db8::1", "443", "/", "[2001:db8::1]"},
        {"ws://127.0.0.1:65535", false, "127.0.0.1", "65535", "/", "127.0.0.1:65535"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        const auto url = net::parse_url(c.text);
        REQUIRE(url.ok());
        CHECK(url->tls == c.tls);
        CHECK(url->host == c.host);
        CHECK(url->port == c.port);
        CHECK(url->target == c.target);
        CHECK(url->server_name == c.server_name);
    }
}

TEST_CASE("a proxy URL it cannot use is a usage error that shows no password", "[net]") {
    CHECK(net::parse_proxy_url("http://proxy.example:3128").ok());
    for (const char* text : {"127.0.0.1:18888", "https://127.0.0.1:18888", "http://user:secret@127.0.0.1:18888",
                             "http://127.0.0.1:18888/path", "http://127.0.0.1:0"}) {
        INFO(text);
        const auto parsed = net::parse_proxy_url(text);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().exit == ExitCode::usage);
        CHECK(parsed.error().message.find("secret") == std::string::npos);
    }
    CHECK_THAT(net::parse_proxy_url("http://user:secret@127.0.0.1:18888").error().message,
               Catch::Contains("http://***@127.0.0.1:18888"));
}

TEST_CASE("parse_url rejects what it cannot connect to", "[net]") {
    struct Case {
        const char* text;
        const char* says;
    };
    const Case cases[] = {
        {"", "expected ws://"},
        {"http://example.com", "expected ws://"},
        {"wss:/example.com", "expected ws://"},
        {"ws://", "missing host"},
        {"ws://:8080/", "missing host"},
        {"ws://user:pw@example.com", "user information"},
        {"ws://h:0", "port 0"},
        {"ws://h:65536", "not a port"},
        {"ws://h:", "not a port"},
        {"ws://h:8x", "not a port"},
        {"ws://::1/", "brackets"},
        {"ws://[::1/", "missing ']'"},
        {"ws://[nothex]:1/", "not an IPv6 address"},
        {"ws://[::1]x/", "after IPv6"},
        {"ws://h/#frag", "fragment"},
        {"ws://h h/", "spaces"},
        {"ws://h%41/", "not a valid host name"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        const auto url = net::parse_url(c.text);
        REQUIRE_FALSE(url.ok());
        CHECK(url.error().exit == ExitCode::usage);
        CHECK_THAT(url.error().message, Catch::Contains(c.says));
    }
}

TEST_CASE("ws echo keeps order and carries a 1 MiB message", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());
    Peer client;
    dial(io, client, server.url());
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());
    CHECK(client.connection->peer() == "127.0.0.1:" + std::to_string(server.server->port()));

    std::vector<Bytes> messages;
    for (std::size_t i = 0; i < 300; ++i)
        messages.push_back(pattern(1 + (i * 97) % 5000, static_cast<std::uint8_t>(i)));
    messages.push_back(pattern(1024 * 1024, 7));
    messages.push_back(Bytes{});
    require_echo(io, client, messages);
    CHECK(server.server->connections() == 1);

    SECTION("close is graceful, reported once, and safe to repeat") {
        client.connection->send(pattern(100, 1));
        client.connection->close();
        client.connection->close();
        CHECK_FALSE(client.connection->send(pattern(10, 2)));
        REQUIRE(run_until(io, [&] { return client.closed && server.peers.at(0)->closed; }));
        CHECK(client.closed->exit == ExitCode::ok);
        CHECK(client.close_calls == 1);
        CHECK(server.peers.at(0)->received.back() == pattern(100, 1));  // flushed before the close frame
        CHECK(server.peers.at(0)->closed->exit == ExitCode::unreachable);
        CHECK_THAT(server.peers.at(0)->closed->message, Catch::Contains("closed by peer"));
        client.connection->close();
        REQUIRE(run_until(io, [&] { return server.server->connections() == 0; }));
        CHECK(client.close_calls == 1);
    }
}

TEST_CASE("a message over max_message_bytes closes the connection with an error", "[net]") {
    asio::io_context io;
    TestServer server;
    auto options = local_server();
    options.limits.max_message_bytes = 1024;
    server.listen(io, options);
    Peer client;
    dial(io, client, server.url());
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());
    require_echo(io, client, {pattern(1024, 1)});

    REQUIRE(client.connection->send(pattern(1025, 2)));
    REQUIRE(run_until(io, [&] { return client.closed && !server.peers.empty() && server.peers[0]->closed; }));
    const auto& server_side = *server.peers[0]->closed;
    CHECK(server_side.exit == ExitCode::bad_input);
    CHECK_THAT(server_side.message, Catch::Contains("too large") && Catch::Contains("1024"));
    CHECK(client.closed->exit == ExitCode::unreachable);
    CHECK_THAT(client.closed->message, Catch::Contains("1009"));
    CHECK(server.peers[0]->received.size() == 1);
}

TEST_CASE("a full send queue makes send() return false and closes the connection", "[net]") {
    asio::io_context io;
    TestServer server;
    server.start = false;  // never reads: the client's queue can only grow
    server.listen(io, local_server());
    Peer client;
    net::ClientOptions options;
    options.limits.max_queued_bytes = 1024 * 1024;
    dial(io, client, server.url(), options);
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());

    int accepted = 0;
    bool refused = false;
    for (int i = 0; i < 1000 && !refused; ++i) {
        if (client.connection->send(pattern(64 * 1024, 3))) {
            ++accepted;
        } else {
            refused = true;
        }
    }
    REQUIRE(refused);
    CHECK(accepted <= 16);
    CHECK(client.connection->queued_bytes() <= options.limits.max_queued_bytes);
    CHECK_FALSE(client.closed);  // reported later, never from inside send()
    REQUIRE(run_until(io, [&] { return client.closed.has_value(); }));
    CHECK_THAT(client.closed->message, Catch::Contains("overflow"));
    CHECK_FALSE(client.connection->send(pattern(10, 4)));
    CHECK(client.close_calls == 1);
}

TEST_CASE("the server closes connections over max_connections and stops accepting", "[net]") {
    asio::io_context io;
    TestServer server;
    auto options = local_server();
    options.max_connections = 2;
    server.listen(io, options);
    Peer first, second, third;
    dial(io, first, server.url());
    dial(io, second, server.url());
    REQUIRE(run_until(io, [&] { return first.settled() && second.settled(); }));
    REQUIRE(first.connected());
    REQUIRE(second.connected());
    CHECK(server.server->connections() == 2);

    dial(io, third, server.url());
    REQUIRE(run_until(io, [&] { return third.settled(); }));
    CHECK_FALSE(third.connected());
    CHECK(third.connect_error->exit == ExitCode::unreachable);

    first.connection->close();
    REQUIRE(run_until(io, [&] { return server.server->connections() == 1; }));
    Peer fourth;
    dial(io, fourth, server.url());
    REQUIRE(run_until(io, [&] { return fourth.settled(); }));
    CHECK(fourth.connected());

    server.server->stop();
    Peer fifth;
    dial(io, fifth, server.url());
    REQUIRE(run_until(io, [&] { return fifth.settled(); }));
    CHECK_FALSE(fifth.connected());
    CHECK(server.peers.size() == 3);
}

TEST_CASE("a plain HTTP request to the WebSocket port gets 426", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());
    auto exchange = RawExchange::run(io, server.server->port(), "GET /aegis HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(run_until(io, [&] { return exchange->done; }));
    CHECK_THAT(exchange->response, Catch::StartsWith("HTTP/1.1 426"));
    CHECK(server.peers.empty());
}

TEST_CASE("connecting to a closed port is unreachable, a silent one times out", "[net]") {
    asio::io_context io;
    SECTION("connection refused") {
        const auto port = unused_port(io);
        Peer client;
        dial(io, client, "ws://127.0.0.1:" + std::to_string(port) + "/");
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::unreachable);
        CHECK_THAT(client.connect_error->message,
                   Catch::Contains("127.0.0.1:" + std::to_string(port)) && Catch::Contains("connection refused"));
    }
    SECTION("listening but never answering") {
        tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // never accepts
        Peer client;
        net::ClientOptions options;
        options.limits.handshake_timeout = milliseconds(300);
        const auto started = Clock::now();
        dial(io, client, "ws://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/", options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::timeout);
        CHECK_THAT(client.connect_error->message, Catch::Contains("timed out"));
        CHECK(Clock::now() - started < milliseconds(3000));
    }
    SECTION("a malformed proxy is a usage error") {
        Peer client;
        net::ClientOptions options;
        options.proxy = "socks5://127.0.0.1:1080";
        dial(io, client, "ws://127.0.0.1:1/", options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::usage);
    }
}

TEST_CASE("wss with a self-signed certificate", "[net]") {
    auto certificate = TestCertificate::make();
    if (!certificate) {
        WARN("openssl command not found (or failed): wss tests skipped");
        return;
    }
    asio::io_context io;
    TestServer server;
    auto options = local_server();
    options.tls_cert_file = certificate->cert.string();
    options.tls_key_file = certificate->key.string();
    server.listen(io, options);

    SECTION("verified against the certificate as CA") {
        Peer client;
        net::ClientOptions client_options;
        client_options.tls_ca_file = certificate->cert.string();
        dial(io, client, server.url("wss", "localhost"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        INFO((client.connect_error ? client.connect_error->message : std::string()));
        REQUIRE(client.connected());
        require_echo(io, client, {pattern(10, 1), pattern(200'000, 2), pattern(1, 3)});
        client.connection->close();
        REQUIRE(run_until(io, [&] { return client.closed.has_value(); }));
        CHECK(client.closed->exit == ExitCode::ok);
    }
    SECTION("an IP address is verified against the certificate's IP name") {
        Peer client;
        net::ClientOptions client_options;
        client_options.tls_ca_file = certificate->cert.string();
        dial(io, client, server.url("wss"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connected());
        require_echo(io, client, {pattern(10, 1)});
    }
    SECTION("verification fails without the CA") {
        Peer client;
        dial(io, client, server.url("wss", "localhost"));
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::refused);
        CHECK_THAT(client.connect_error->message, Catch::Contains("TLS certificate verify failed") &&
                                                      Catch::Contains("self-signed certificate") &&
                                                      Catch::Contains("localhost:"));
    }
    SECTION("verification off accepts any certificate") {
        Peer client;
        net::ClientOptions client_options;
        client_options.tls_verify = false;
        dial(io, client, server.url("wss", "localhost"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connected());
        require_echo(io, client, {pattern(10, 1)});
    }
    SECTION("a plain ws client cannot talk to the TLS port, and both sides say why") {
        Peer client;
        net::ClientOptions client_options;
        client_options.limits.handshake_timeout = milliseconds(2000);
        dial(io, client, server.url("ws"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled() && !server.refused.empty(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::unreachable);  // as a server over its limit: retried
        CHECK_THAT(client.connect_error->message, Catch::Contains("use wss://"));
        CHECK(server.refused.at(0).first == "tls_failed");
        CHECK_THAT(server.refused.at(0).second, Catch::Contains("TLS handshake failed") && Catch::Contains("ws://"));
    }
    SECTION("a client that does not trust the certificate: the server logs the client's alert") {
        Peer client;
        dial(io, client, server.url("wss", "localhost"));
        REQUIRE(run_until(io, [&] { return client.settled() && !server.refused.empty(); }));
        CHECK(server.refused.at(0).first == "tls_failed");
        CHECK_THAT(server.refused.at(0).second, Catch::Contains("TLS handshake failed") && Catch::Contains("alert"));
    }
    SECTION("a missing CA file is bad input naming the file") {
        Peer client;
        net::ClientOptions client_options;
        client_options.tls_ca_file = (certificate->dir / "missing.pem").string();
        dial(io, client, server.url("wss", "localhost"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::bad_input);
        CHECK_THAT(client.connect_error->message, Catch::Contains("missing.pem"));
    }
}

TEST_CASE("a wss client on a plain ws port is told to use ws://", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());
    Peer client;
    net::ClientOptions client_options;
    client_options.tls_verify = false;
    dial(io, client, server.url("wss"), client_options);
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connect_error);
    CHECK(client.connect_error->exit == ExitCode::refused);
    CHECK_THAT(client.connect_error->message, Catch::Contains("use ws://"));
}

TEST_CASE("reload_tls: new connections get the new certificate, a bad file keeps the old one", "[net]") {
    auto first = TestCertificate::make();
    auto second = TestCertificate::make();
    if (!first || !second) {
        WARN("openssl command not found (or failed): wss tests skipped");
        return;
    }
    asio::io_context io;
    TestServer server;
    auto options = local_server();
    const auto live_cert = first->dir / "live-cert.pem";
    const auto live_key = first->dir / "live-key.pem";
    std::filesystem::copy_file(first->cert, live_cert);
    std::filesystem::copy_file(first->key, live_key);
    options.tls_cert_file = live_cert.string();
    options.tls_key_file = live_key.string();
    server.listen(io, options);

    const auto connects_trusting = [&](const TestCertificate& ca) {
        Peer client;
        net::ClientOptions client_options;
        client_options.tls_ca_file = ca.cert.string();
        dial(io, client, server.url("wss", "localhost"), client_options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        return client.connected();
    };
    CHECK(connects_trusting(*first));
    CHECK_FALSE(connects_trusting(*second));

    std::filesystem::copy_file(second->cert, live_cert, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(second->key, live_key, std::filesystem::copy_options::overwrite_existing);
    REQUIRE(server.server->reload_tls().ok());
    CHECK(connects_trusting(*second));
    CHECK_FALSE(connects_trusting(*first));

    std::filesystem::remove(live_key);  // a reload that cannot load keeps the pair in use
    const auto failed = server.server->reload_tls();
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().exit == ExitCode::bad_input);
    CHECK(connects_trusting(*second));
}

TEST_CASE("server TLS files that cannot be loaded are bad input", "[net]") {
    asio::io_context io;
    auto options = local_server();
    options.tls_cert_file = "/nonexistent/aegis-cert.pem";
    options.tls_key_file = "/nonexistent/aegis-key.pem";
    auto result = net::Server::listen(io, options, [](std::shared_ptr<net::Connection>) {});
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().exit == ExitCode::bad_input);
    CHECK_THAT(result.error().message, Catch::Contains("aegis-cert.pem"));

    options.tls_key_file.clear();
    auto half = net::Server::listen(io, options, [](std::shared_ptr<net::Connection>) {});
    REQUIRE_FALSE(half.ok());
    CHECK(half.error().exit == ExitCode::usage);

    auto bad_listen = net::Server::listen(io, local_server("127.0.0.1"), [](std::shared_ptr<net::Connection>) {});
    REQUIRE_FALSE(bad_listen.ok());
    CHECK(bad_listen.error().exit == ExitCode::usage);
}

TEST_CASE("ws through an HTTP CONNECT proxy", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());

    SECTION("a 200 answer opens a tunnel") {
        TestProxy proxy(io, 200);
        Peer client;
        net::ClientOptions options;
        options.proxy = proxy.url();
        dial(io, client, server.url(), options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        INFO((client.connect_error ? client.connect_error->message : std::string()));
        REQUIRE(client.connected());
        require_echo(io, client, {pattern(10, 1), pattern(300'000, 2)});
        REQUIRE(proxy.requests.size() == 1);
        const auto authority = "127.0.0.1:" + std::to_string(server.server->port());
        CHECK_THAT(proxy.requests[0], Catch::StartsWith("CONNECT " + authority + " HTTP/1.1\r\n"));
        CHECK_THAT(proxy.requests[0], Catch::Contains("Host: " + authority));
        CHECK(proxy.tunnels == 1);
    }
    SECTION("a 403 answer is unreachable") {
        TestProxy proxy(io, 403);
        Peer client;
        net::ClientOptions options;
        options.proxy = proxy.url();
        dial(io, client, server.url(), options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::unreachable);
        CHECK_THAT(client.connect_error->message,
                   Catch::Contains("proxy answered 403") || Catch::Contains("answered 403"));
        CHECK(server.peers.empty());
    }
    SECTION("a proxy that is not running is unreachable and named") {
        Peer client;
        net::ClientOptions options;
        const auto port = unused_port(io);
        options.proxy = "http://127.0.0.1:" + std::to_string(port);
        dial(io, client, server.url(), options);
        REQUIRE(run_until(io, [&] { return client.settled(); }));
        REQUIRE(client.connect_error);
        CHECK(client.connect_error->exit == ExitCode::unreachable);
        CHECK_THAT(client.connect_error->message, Catch::Contains("proxy 127.0.0.1:" + std::to_string(port)));
    }
}

TEST_CASE("last_rtt is measured from ping to pong", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());
    Peer client;
    net::ClientOptions options;
    options.limits.ping_interval = milliseconds(50);
    dial(io, client, server.url(), options);
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());
    CHECK(client.connection->last_rtt().count() == 0);
    REQUIRE(run_until(
        io, [&] { return client.connection->last_rtt().count() > 0; }, milliseconds(3000)));
    CHECK(client.connection->last_rtt() < std::chrono::seconds(1));
    CHECK_FALSE(client.closed);
}

TEST_CASE("an idle peer that stops answering pings times out", "[net]") {
    asio::io_context io;
    TestServer server;
    server.start = false;  // never reads, so never answers a ping
    server.listen(io, local_server());
    Peer client;
    net::ClientOptions options;
    options.limits.idle_timeout = milliseconds(400);
    dial(io, client, server.url(), options);
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());
    REQUIRE(run_until(
        io, [&] { return client.closed.has_value(); }, milliseconds(5000)));
    CHECK(client.closed->exit == ExitCode::timeout);
}

TEST_CASE("IPv6 loopback listen and connect", "[net]") {
    asio::io_context io;
    TestServer server;
    if (const auto error = server.try_listen(io, local_server("[::1]:0"))) {
        WARN("no IPv6 loopback here: " << error->message);
        return;
    }
    const auto port = server.server->port();
    Peer client;
    dial(io, client, "ws://[::1]:" + std::to_string(port) + "/");
    REQUIRE(run_until(io, [&] { return client.settled(); }));
    REQUIRE(client.connected());
    CHECK(client.connection->peer() == "[::1]:" + std::to_string(port));
    require_echo(io, client, {pattern(10, 1)});
}

TEST_CASE("a client bound to a local address connects from it", "[net]") {
    asio::io_context io;
    TestServer server;
    server.listen(io, local_server());
    net::ClientOptions options;
    options.local_address = "127.0.0.2";  // any 127/8 address is the loopback's
    Peer client;
    dial(io, client, server.url(), options);
    REQUIRE(run_until(io, [&] { return client.settled() && server.peers.size() == 1; }));
    REQUIRE(client.connected());
    CHECK_THAT(server.peers.at(0)->connection->peer(), Catch::StartsWith("127.0.0.2:"));
    require_echo(io, client, {pattern(10, 1)});

    SECTION("an address that is not one, or of the other family, is refused before connecting") {
        for (const auto* address : {"localhost", "::1"}) {
            options.local_address = address;
            Peer other;
            dial(io, other, server.url(), options);
            REQUIRE(run_until(io, [&] { return other.settled(); }));
            REQUIRE(other.connect_error);
            CHECK_THAT(other.connect_error->message, Catch::Contains(address));
        }
        CHECK(server.peers.size() == 1);
    }
}

TEST_CASE("AdminServer answers GET and refuses the rest", "[net]") {
    asio::io_context io;
    std::vector<std::string> paths;
    auto admin = net::AdminServer::listen(io, "127.0.0.1:0", [&paths](std::string_view path) {
        paths.emplace_back(path);
        if (path == "/healthz") return net::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
        return net::HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
    });
    REQUIRE(admin.ok());
    const auto port = admin.value()->port();
    REQUIRE(port != 0);

    auto health = RawExchange::run(io, port, "GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    auto missing = RawExchange::run(io, port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    auto post = RawExchange::run(io, port, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    auto huge = RawExchange::run(io, port, "GET /" + std::string(20'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(run_until(io, [&] { return health->done && missing->done && post->done && huge->done; }));

    CHECK_THAT(health->response, Catch::StartsWith("HTTP/1.1 200"));
    CHECK_THAT(health->response, Catch::Contains("Content-Length: 3\r\n") && Catch::EndsWith("\r\n\r\nok\n"));
    CHECK_THAT(missing->response, Catch::StartsWith("HTTP/1.1 404"));
    CHECK_THAT(post->response, Catch::StartsWith("HTTP/1.1 405"));
    CHECK_THAT(huge->response, Catch::StartsWith("HTTP/1.1 400"));
    std::sort(paths.begin(), paths.end());
    CHECK(paths == std::vector<std::string>{"/healthz", "/nope"});

    admin.value()->stop();
    auto after = RawExchange::run(io, port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(run_until(io, [&] { return after->done; }));
    CHECK(after->response.empty());
}

TEST_CASE("AdminServer gives a request handler the method, body, peer and whether it listens on loopback", "[net]") {
    asio::io_context io;
    std::vector<net::HttpRequest> seen;
    auto admin = net::AdminServer::listen(io, "127.0.0.1:0", [&seen](const net::HttpRequest& request) {
        seen.push_back(request);
        net::HttpResponse answer{405, "text/plain; charset=utf-8", "no\n", "POST"};
        if (request.method == "POST") answer = net::HttpResponse{200, "text/plain; charset=utf-8", request.body, {}};
        return answer;
    });
    REQUIRE(admin.ok());
    const auto port = admin.value()->port();
    auto post = RawExchange::run(io, port,
                                 "POST /channels/disable?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"
                                 "agent.*.logs");
    REQUIRE(run_until(io, [&] { return post->done; }));
    auto get = RawExchange::run(io, port, "GET /channels HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(run_until(io, [&] { return get->done; }));
    CHECK_THAT(post->response, Catch::StartsWith("HTTP/1.1 200") && Catch::EndsWith("\r\n\r\nagent.*.logs"));
    CHECK_THAT(get->response, Catch::StartsWith("HTTP/1.1 405") && Catch::Contains("Allow: POST\r\n"));
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].method == "POST");
    CHECK(seen[0].path == "/channels/disable");
    CHECK(seen[0].body == "agent.*.logs");
    CHECK(seen[0].local);
    CHECK_THAT(seen[0].peer, Catch::StartsWith("127.0.0.1:"));
    CHECK(seen[1].method == "GET");
    CHECK(seen[1].body.empty());
    admin.value()->stop();
}
