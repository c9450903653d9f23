// Attack 7: a hostile relay. This is a gateway that holds the real gateway's key, so the broker
// accepts it, but alters what it relays: it delivers a batch whose origin signature was
// changed, one whose payload was changed, one that is not a batch at all, and then the genuine
// batch with the same message id. The broker must pass only the genuine one to its
// subscriber, and acknowledge each of the others (PROTOCOL.md §6) so none is delivered forever.

#include <boost/asio/steady_timer.hpp>
#include <fstream>

#include "attacks.h"
#include "core/clock.h"
#include "net/websocket.h"
#include "protocol/envelope.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/record.h"
#include "report.h"
#include "session.h"

namespace aegis::attack {

namespace {

constexpr std::size_t kSignatureBytes = 64;

struct Delivery {
    std::string what;
    Bytes batch;
};

std::vector<Delivery> deliveries(const Options& options) {
    const auto channel = fmt::format("backend.{}.policies", options.agent_id);
    const auto id = protocol::new_message_id(aegis::unix_time_ms());
    const auto genuine = signed_batch(*options.other_identity, options.other_id, channel, "genuine", &id);
    std::vector<Delivery> out;
    Bytes signature = genuine;
    signature.back() ^= 0x01;
    out.push_back({"origin signature altered", signature});
    Bytes payload = genuine;
    payload[payload.size() - kSignatureBytes - 1] ^= 0x01;  // the last payload byte
    out.push_back({"payload altered", payload});
    out.push_back({"not a batch at all", Bytes(genuine.size(), 0xee)});
    out.push_back({"genuine, the same message id", genuine});
    return out;
}

class Relay {
public:
    Relay(boost::asio::io_context& io, const Options& options, Report& report)
        : io_(io),
          options_(options),
          report_(report),
          handshake_({&*options.identity, protocol::kDefaultClockSkewMs}, cache_),
          deliveries_(deliveries(options)) {}

    void accept(std::shared_ptr<net::Connection> connection) {
        if (connection_) {
            connection->close();  // one broker is enough
            return;
        }
        connection_ = std::move(connection);
        connection_->start([this](Bytes message) { on_message(message); },
                           [this](const Error& why) {
                               if (!finished_) fail(fmt::format("the broker's connection ended: {}", why.message));
                           });
    }

    [[nodiscard]] bool finished() const { return finished_; }

private:
    void on_message(const Bytes& message) {
        if (finished_) return;
        if (!records_) return on_handshake(message);
        auto plaintext = records_->open(message);
        if (!plaintext)
            return fail(fmt::format("a record from the broker did not open: {}", plaintext.error().message));
        auto frame = protocol::decode_frame(plaintext.value());
        if (!frame) return fail(fmt::format("a frame from the broker did not decode: {}", frame.error().message));
        on_frame(frame.value());
    }

    void on_handshake(const Bytes& message) {
        if (!hello_done_) {
            auto reply = handshake_.on_client_hello(message, unix_time_ms());
            if (!reply) return fail(fmt::format("ClientHello refused: {}", reply.error().message));
            hello_done_ = true;
            connection_->send(std::move(reply.value()));
            return;
        }
        auto claim = handshake_.on_client_auth(message);
        if (!claim) return fail(fmt::format("ClientAuth refused: {}", claim.error().message));
        protocol::Accepted grant;
        crypto::random_bytes(grant.session_id);
        crypto::random_bytes(grant.session_token);
        grant.assigned_id = options_.agent_id;
        grant.role = Role::agent;
        connection_->send(handshake_.accept(grant));
        records_.emplace(handshake_.take_keys(), protocol::RekeyPolicy{}, unix_time_ms());
        report_.expect(true, fmt::format("the broker completed the handshake with the hostile gateway as '{}'",
                                         grant.assigned_id));
    }

    void on_frame(const protocol::Frame& frame) {
        using protocol::FrameType;
        switch (frame.type) {
            case FrameType::subscribe:
            case FrameType::unsubscribe: {
                protocol::Frame ack;
                ack.type = FrameType::suback;
                ack.request_id = frame.request_id;
                send(ack);
                if (frame.type == FrameType::subscribe && next_ == 0) deliver_next();
                return;
            }
            case FrameType::publish: {
                protocol::Frame ack;
                ack.type = FrameType::puback;
                ack.request_id = frame.request_id;
                ack.sequence = 1;
                send(ack);
                return;
            }
            case FrameType::deliver_ack: {
                if (frame.sequence < next_ || next_ == 0) return;  // not the one waited for
                report_.expect(true,
                               fmt::format("delivery {} ({}) was acknowledged", next_, deliveries_[next_ - 1].what));
                if (next_ == deliveries_.size()) {
                    finished_ = true;
                    io_.stop();
                    return;
                }
                deliver_next();
                return;
            }
            default: return;
        }
    }

    // One delivery at a time: the next goes out only once the broker acknowledged this one.
    void deliver_next() {
        protocol::Frame frame;
        frame.type = protocol::FrameType::deliver;
        frame.sequence = ++next_;
        frame.batch = deliveries_[next_ - 1].batch;
        send(frame);
    }

    void send(const protocol::Frame& frame) {
        connection_->send(records_->seal(protocol::encode_frame(frame), unix_time_ms()));
    }

    void fail(const std::string& why) {
        report_.expect(false, why);
        finished_ = true;
        io_.stop();
    }

    boost::asio::io_context& io_;
    const Options& options_;
    Report& report_;
    protocol::ReplayCache cache_;
    protocol::ServerHandshake handshake_;
    std::vector<Delivery> deliveries_;
    std::shared_ptr<net::Connection> connection_;
    std::optional<protocol::RecordLayer> records_;
    bool hello_done_ = false;
    bool finished_ = false;
    std::uint64_t next_ = 0;  // the delivery in flight (1-based); 0 before the first
};

}  // namespace

int hostile_gateway(const Options& options) {
    Report report;
    boost::asio::io_context io;
    Relay relay(io, options, report);
    net::ServerOptions server_options;
    server_options.listen = options.listen;
    auto server = net::Server::listen(
        io, server_options, [&](std::shared_ptr<net::Connection> connection) { relay.accept(std::move(connection)); });
    if (!report.expect(server.ok(), "the hostile gateway listens")) return 2;
    {
        const auto temporary = options.port_file.string() + ".tmp";
        std::ofstream(temporary) << (*server)->port() << "\n";
        std::filesystem::rename(temporary, options.port_file);
    }
    boost::asio::steady_timer deadline(io);
    deadline.expires_after(options.timeout);
    deadline.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) io.stop();
    });
    io.run();
    report.expect(relay.finished(), "every delivery was acknowledged before the deadline");
    return report.exit_code();
}

}  // namespace aegis::attack
