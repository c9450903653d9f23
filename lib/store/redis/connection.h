#pragma once
// One connection to a Redis server on the caller's Asio event loop. hiredis formats the commands
// and parses the replies (RESP); the socket is Asio's. Commands are pipelined (many in flight,
// replies matched in order), each has a deadline (one that passes fails its completion and resets
// the connection: the replies of the others can no longer be matched), and a lost connection is
// made again after a backoff. A connection used for pub/sub subscribes again after each reconnect
// and hands every message to its message handler.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace aegis::store::redis {

// redis://HOST:PORT[/DB]
struct Endpoint {
    std::string host;
    std::uint16_t port = 6379;
    unsigned database = 0;

    bool operator==(const Endpoint&) const = default;
};

// Usage error (ExitCode::usage) for anything but redis://HOST[:PORT][/DB].
[[nodiscard]] Result<Endpoint> parse_url(std::string_view url);
// A TCP port, 1-65535, all of `text`; nothing otherwise.
[[nodiscard]] std::optional<std::uint16_t> parse_port(std::string_view text);
[[nodiscard]] std::string to_string(const Endpoint& endpoint);

struct Reply {
    enum class Type { string, array, integer, nil, status };
    Type type = Type::nil;
    std::string text;  // string and status
    long long integer = 0;
    std::vector<Reply> elements;

    [[nodiscard]] bool is_nil() const { return type == Type::nil; }
    // The reply as a number: an integer, or a string holding one; 0 otherwise.
    [[nodiscard]] std::uint64_t as_uint() const;
};

struct ConnectionOptions {
    std::chrono::milliseconds command_timeout{2'000};  // per command, from when it is issued
    std::chrono::milliseconds backoff_min{50};         // between attempts to connect, doubling,
    std::chrono::milliseconds backoff_max{2'000};      // up to this, with jitter
    std::size_t max_waiting = 100'000;                 // commands queued or in flight; past it refused at once
};

// A Redis error reply comes as an Error whose message is the server's text.
using ReplyHandler = std::function<void(Result<Reply>)>;
using Command = std::vector<std::string>;
// Judges the answer to a setup command: an error resets the connection, with its message as why.
using SetupCheck = std::function<Result<void>(const Result<Reply>& answer)>;

class Connection {
public:
    Connection(boost::asio::io_context& io, Endpoint endpoint, ConnectionOptions options = {});
    ~Connection();  // fails what is waiting ("closed") and closes the socket
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connects now and again whenever the connection is lost.
    void start();
    // Fails what is waiting and stops reconnecting.
    void stop();
    // Stops once nothing is waiting (now, when nothing is).
    void drain();

    // Sends the command (queued while the connection is down, within its deadline).
    void command(Command args, ReplyHandler done);
    // Sent first on every new connection (after SELECT, before the subscriptions and whatever
    // waits), in the order given. Without a check, an error reply resets the connection.
    void setup(Command args, SetupCheck check = {});
    // Where the next connection goes: a connection up elsewhere is reset now (what was sent
    // fails, what was not waits for the new one), and the next attempt is made at once.
    void set_endpoint(Endpoint endpoint);
    [[nodiscard]] const Endpoint& endpoint() const;
    // A pub/sub connection: SUBSCRIBE to the channel now and after every reconnect. Only
    // subscriptions may be sent on it afterwards (Redis refuses other commands there).
    void subscribe(std::string channel);
    // Every message of a subscribed channel: (channel, payload).
    void on_message(std::function<void(const std::string& channel, const std::string& payload)> handler);
    // Told each time the connection comes up (true) or is lost (false, with why).
    void on_state(std::function<void(bool up, const std::string& why)> handler);

    [[nodiscard]] bool connected() const;
    // Connections made so far (the first included): a reconnect shows as a higher count.
    [[nodiscard]] std::uint64_t connections() const;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace aegis::store::redis
