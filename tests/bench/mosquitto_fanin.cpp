// mosquitto_fanin: the mosquitto anchor of scripts/bench.sh's fan-in case, on Debian's
// libmosquitto: K MQTT clients from one process, each publishing M messages at QoS 1 with at most
// W unacknowledged, as aegis_loadgen's sessions do in its publish mode.
//
//   mosquitto_fanin --port P --clients K --messages M --topic PREFIX --tag TAG [--hold] [options]
//       connects the K clients (client i publishes to PREFIX/cI the payloads TAG-cI-J, J < M),
//       prints {"phase": "connected", ...} once every CONNACK is in, with --hold waits for a USR1,
//       then publishes and prints one JSON object with the figures once every PUBACK is in; with
//       --hold, waits for another USR1 (or a TERM) before the clients disconnect
//
// One thread polls every client's socket: a thread per client (mosquitto_loop_start) would
// measure the driver's scheduling more than the broker. Exit status: 0 every message
// acknowledged, 1 otherwise (one line on stderr), 2 a usage error.

#include <fmt/format.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    int port = 1883;
    std::size_t clients = 1000;
    std::size_t messages = 100;
    std::size_t window = 20;
    int qos = 1;
    std::string topic = "fanin";
    std::string tag = "f";
    bool hold = false;
    double limit_s = 300;
};

struct Client {
    mosquitto* mosq = nullptr;
    std::size_t index = 0;
    std::string topic;
    std::size_t next = 0;  // the next message to publish
    std::size_t acknowledged = 0;
    bool connected = false;
    int refused = 0;  // the CONNACK's code, when not 0
};

class Fanin {
public:
    explicit Fanin(const Options& options) : options_(options), clients_(options.clients) {}

    ~Fanin() {
        for (auto& client : clients_)
            if (client.mosq != nullptr) mosquitto_destroy(client.mosq);
    }

    [[nodiscard]] bool connect() {
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            auto& client = clients_[i];
            client.index = i;
            client.topic = fmt::format("{}/c{}", options_.topic, i);
            const auto id = fmt::format("fanin-{}-{}", options_.tag, i);
            client.mosq = mosquitto_new(id.c_str(), true, this);
            if (client.mosq == nullptr) return failed("cannot make a client");
            index_of_.emplace(client.mosq, i);
            mosquitto_int_option(client.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
            mosquitto_int_option(client.mosq, MOSQ_OPT_TCP_NODELAY, 1);
            mosquitto_max_inflight_messages_set(client.mosq, static_cast<unsigned>(options_.window));
            mosquitto_connect_callback_set(client.mosq, on_connect);
            mosquitto_publish_callback_set(client.mosq, on_publish);
            if (const int rc = mosquitto_connect(client.mosq, options_.host.c_str(), options_.port, 60);
                rc != MOSQ_ERR_SUCCESS)
                return failed(fmt::format("client {} cannot connect: {}", i, mosquitto_strerror(rc)));
        }
        const auto started = Clock::now();
        if (!loop_until([this] { return connected_ == clients_.size(); })) return false;
        connect_seconds_ = seconds_since(started);
        return true;
    }

    [[nodiscard]] bool publish() {
        publishing_ = true;
        started_ = Clock::now();
        for (auto& client : clients_)
            for (std::size_t i = 0; i < options_.window; ++i) publish_next(client);
        const bool done = loop_until([this] { return acknowledged_ == total(); });
        seconds_ = seconds_since(started_);
        return done;
    }

    [[nodiscard]] std::string connected_json() const {
        return fmt::format(R"({{"phase": "connected", "clients": {}, "connect_seconds": {:.3f}}})", clients_.size(),
                           connect_seconds_);
    }

    [[nodiscard]] std::string report_json() const {
        return fmt::format(R"({{"clients": {}, "messages_per_client": {}, "window": {}, "qos": {}, "published": {}, )"
                           R"("acknowledged": {}, "seconds": {:.3f}, "msgs_per_s": {:.0f}}})",
                           clients_.size(), options_.messages, options_.window, options_.qos, published_, acknowledged_,
                           seconds_, seconds_ > 0 ? static_cast<double>(acknowledged_) / seconds_ : 0.0);
    }

    [[nodiscard]] std::size_t total() const { return clients_.size() * options_.messages; }
    [[nodiscard]] std::size_t acknowledged() const { return acknowledged_; }

private:
    static void on_connect(mosquitto* mosq, void* self, int rc) { static_cast<Fanin*>(self)->connected(mosq, rc); }
    static void on_publish(mosquitto* mosq, void* self, int /*mid*/) { static_cast<Fanin*>(self)->acked(mosq); }

    void connected(mosquitto* mosq, int rc) {
        auto& client = clients_[index_of_.at(mosq)];
        if (rc != 0) {
            client.refused = rc;
            if (!failure_) failure_ = fmt::format("client {} refused: {}", client.index, mosquitto_connack_string(rc));
            return;
        }
        if (!client.connected) ++connected_;
        client.connected = true;
    }

    void acked(mosquitto* mosq) {
        auto& client = clients_[index_of_.at(mosq)];
        ++client.acknowledged;
        ++acknowledged_;
        publish_next(client);
    }

    void publish_next(Client& client) {
        if (client.next >= options_.messages) return;
        const auto payload = fmt::format("{}-c{}-{}", options_.tag, client.index, client.next++);
        const int rc = mosquitto_publish(client.mosq, nullptr, client.topic.c_str(), static_cast<int>(payload.size()),
                                         payload.data(), options_.qos, false);
        if (rc != MOSQ_ERR_SUCCESS && !failure_)
            failure_ = fmt::format("client {} cannot publish: {}", client.index, mosquitto_strerror(rc));
        if (rc == MOSQ_ERR_SUCCESS) ++published_;
    }

    // Polls every socket until `done`, a failure or the time limit.
    template <typename Done>
    [[nodiscard]] bool loop_until(Done done) {
        std::vector<pollfd> fds(clients_.size());
        const auto deadline = Clock::now() + std::chrono::duration<double>(options_.limit_s);
        auto last_misc = Clock::now();
        while (!done()) {
            if (failure_) return failed(*failure_);
            if (Clock::now() > deadline)
                return failed(fmt::format("timed out: {} connected, {} of {} acknowledged", connected_, acknowledged_,
                                          publishing_ ? total() : 0));
            for (std::size_t i = 0; i < clients_.size(); ++i) {
                fds[i].fd = mosquitto_socket(clients_[i].mosq);
                fds[i].events = static_cast<short>(POLLIN | (mosquitto_want_write(clients_[i].mosq) ? POLLOUT : 0));
                fds[i].revents = 0;
            }
            if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) return failed("poll failed");
            for (std::size_t i = 0; i < clients_.size(); ++i) {
                auto* mosq = clients_[i].mosq;
                int rc = MOSQ_ERR_SUCCESS;
                if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) rc = mosquitto_loop_read(mosq, 64);
                if (rc == MOSQ_ERR_SUCCESS && (fds[i].revents & POLLOUT)) rc = mosquitto_loop_write(mosq, 64);
                if (rc != MOSQ_ERR_SUCCESS) return failed(fmt::format("client {}: {}", i, mosquitto_strerror(rc)));
            }
            if (Clock::now() - last_misc > std::chrono::seconds(1)) {
                for (auto& client : clients_) mosquitto_loop_misc(client.mosq);  // keepalive pings
                last_misc = Clock::now();
            }
        }
        return true;
    }

    bool failed(const std::string& why) {
        std::cerr << "mosquitto_fanin: error: " << why << '\n';
        return false;
    }

    static double seconds_since(Clock::time_point from) {
        return std::chrono::duration<double>(Clock::now() - from).count();
    }

    const Options& options_;
    std::vector<Client> clients_;
    std::unordered_map<mosquitto*, std::size_t> index_of_;
    std::size_t connected_ = 0;
    std::size_t published_ = 0;
    std::size_t acknowledged_ = 0;
    bool publishing_ = false;
    std::optional<std::string> failure_;
    Clock::time_point started_{};
    double connect_seconds_ = 0;
    double seconds_ = 0;
};

// Blocks until a USR1 (the caller has read the broker's CPU time); false on a TERM or INT.
bool wait_for_go() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    int received = 0;
    return sigwait(&signals, &received) == 0 && received == SIGUSR1;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    po::options_description described("Options");
    // clang-format off
    described.add_options()
        ("host", po::value(&options.host)->default_value(options.host), "the broker's address")
        ("port", po::value(&options.port)->default_value(options.port), "the broker's port")
        ("clients", po::value(&options.clients)->default_value(options.clients), "clients")
        ("messages", po::value(&options.messages)->default_value(options.messages), "messages each client publishes")
        ("window", po::value(&options.window)->default_value(options.window), "unacknowledged messages per client at most")
        ("qos", po::value(&options.qos)->default_value(options.qos), "QoS of the messages (1 or 2)")
        ("topic", po::value(&options.topic)->default_value(options.topic), "topic prefix")
        ("tag", po::value(&options.tag)->default_value(options.tag), "payload prefix (tells runs apart)")
        ("hold", po::bool_switch(&options.hold), "wait for a USR1 between connecting and publishing")
        ("limit", po::value(&options.limit_s)->default_value(options.limit_s), "seconds before giving up")
        ("help,h", "show this help");
    // clang-format on
    try {
        po::variables_map given;
        po::store(po::command_line_parser(argc, argv).options(described).run(), given);
        po::notify(given);
        if (given.count("help")) {
            std::cout << "Usage: mosquitto_fanin --port P --clients K --messages M [options]\n\n" << described;
            return 0;
        }
    } catch (const po::error& e) {
        std::cerr << "mosquitto_fanin: error: " << e.what() << '\n';
        return 2;
    }
    if (options.clients == 0 || options.messages == 0 || options.window == 0 || options.qos < 1 || options.qos > 2) {
        std::cerr << "mosquitto_fanin: error: --clients, --messages and --window must be positive, --qos 1 or 2\n";
        return 2;
    }
    // USR1 is waited for, never delivered to a handler; blocked before any thread starts.
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    if (options.hold) {
        sigaddset(&blocked, SIGTERM);
        sigaddset(&blocked, SIGINT);
    }
    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

    mosquitto_lib_init();
    int status = 1;
    {
        Fanin fanin(options);
        if (fanin.connect()) {
            std::cout << fanin.connected_json() << std::endl;
            if (!options.hold || wait_for_go()) {
                const bool done = fanin.publish();
                std::cout << fanin.report_json() << std::endl;
                status = done ? 0 : 1;
                if (options.hold) wait_for_go();  // the clients disconnect after the caller's reading
            }
        }
    }
    mosquitto_lib_cleanup();
    return status;
}
