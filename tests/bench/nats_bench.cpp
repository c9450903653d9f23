// nats_bench: the NATS anchor of scripts/bench.sh's pipeline case, on Debian's libnats: a
// publisher and a subscriber as separate processes (as mosquitto_pub and mosquitto_sub), so
// that each side's CPU time is its own.
//
//   nats_bench stream --url URL --name NAME --subject SUBJECT
//       (re)creates a JetStream stream NAME with file storage for SUBJECT
//   nats_bench sub --url URL --subject SUBJECT --count N [--jetstream --stream NAME]
//       says "subscribed SUBJECT" on stderr once the server has the subscription, then prints each
//       distinct payload once, one a line, until N distinct payloads have arrived or a TERM;
//       with --jetstream, through a push consumer of NAME that acknowledges every message
//   nats_bench pub --url URL --subject SUBJECT [--jetstream --window W]
//       publishes each line of stdin (without its newline) as one message; core NATS: flushed
//       at the end; --jetstream: asynchronously with at most W publish acknowledgements
//       outstanding, and returns once every message is acknowledged
//
// Exit status: 0 done, 1 a NATS error (one line on stderr), 2 a usage error.

#include <nats/nats.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_set>

namespace {

namespace po = boost::program_options;

struct Options {
    std::string url = "nats://127.0.0.1:4222";
    std::string subject;
    std::string stream;
    std::size_t count = 0;
    bool jetstream = false;
    std::int64_t window = 1000;
};

volatile std::sig_atomic_t stopping = 0;
extern "C" void on_signal(int /*signal*/) {
    stopping = 1;
}

int fail(std::string_view what, natsStatus status) {
    std::cerr << "nats_bench: error: " << what << ": " << natsStatus_GetText(status);
    if (const char* detail = nats_GetLastError(nullptr); detail != nullptr && *detail != '\0')
        std::cerr << " (" << detail << ')';
    std::cerr << '\n';
    return 1;
}

// The connection and the JetStream context, released in order at the end of a command.
class Session {
public:
    ~Session() {
        if (js_ != nullptr) jsCtx_Destroy(js_);
        if (connection_ != nullptr) natsConnection_Destroy(connection_);
        if (options_ != nullptr) natsOptions_Destroy(options_);
        nats_Close();
    }

    [[nodiscard]] natsStatus connect(const std::string& url) {
        natsStatus status = natsOptions_Create(&options_);
        if (status == NATS_OK) status = natsOptions_SetURL(options_, url.c_str());
        if (status == NATS_OK) status = natsConnection_Connect(&connection_, options_);
        return status;
    }

    [[nodiscard]] natsStatus open_jetstream(std::int64_t window, jsPubAckErrHandler on_error, void* closure) {
        jsOptions options;
        jsOptions_Init(&options);
        options.PublishAsync.MaxPending = window;
        options.PublishAsync.StallWait = 60'000;  // a full window waits for acknowledgements, not errors
        options.PublishAsync.ErrHandler = on_error;
        options.PublishAsync.ErrHandlerClosure = closure;
        return natsConnection_JetStream(&js_, connection_, &options);
    }

    [[nodiscard]] natsConnection* connection() const { return connection_; }
    [[nodiscard]] jsCtx* js() const { return js_; }

private:
    natsOptions* options_ = nullptr;
    natsConnection* connection_ = nullptr;
    jsCtx* js_ = nullptr;
};

int make_stream(const Options& options) {
    Session session;
    if (auto status = session.connect(options.url); status != NATS_OK) return fail("cannot connect", status);
    if (auto status = session.open_jetstream(options.window, nullptr, nullptr); status != NATS_OK)
        return fail("no JetStream context", status);
    jsErrCode code{};
    js_DeleteStream(session.js(), options.stream.c_str(), nullptr, &code);  // left by an earlier run, if any
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = options.stream.c_str();
    const char* subjects[] = {options.subject.c_str()};
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    jsStreamInfo* info = nullptr;
    const auto status = js_AddStream(&info, session.js(), &config, nullptr, &code);
    if (info != nullptr) jsStreamInfo_Destroy(info);
    return status == NATS_OK ? 0 : fail("cannot create the stream", status);
}

int subscribe(const Options& options) {
    Session session;
    if (auto status = session.connect(options.url); status != NATS_OK) return fail("cannot connect", status);
    natsSubscription* subscription = nullptr;
    natsStatus status = NATS_OK;
    if (options.jetstream) {
        status = session.open_jetstream(options.window, nullptr, nullptr);
        if (status != NATS_OK) return fail("no JetStream context", status);
        jsSubOptions sub_options;
        jsSubOptions_Init(&sub_options);
        sub_options.Stream = options.stream.c_str();
        sub_options.Config.AckPolicy = js_AckExplicit;
        sub_options.Config.DeliverPolicy = js_DeliverAll;
        sub_options.Config.MaxAckPending = 1 << 20;  // the acknowledgements, not this bound, pace the stream
        jsErrCode code{};
        status = js_SubscribeSync(&subscription, session.js(), options.subject.c_str(), nullptr, &sub_options, &code);
    } else {
        status = natsConnection_SubscribeSync(&subscription, session.connection(), options.subject.c_str());
    }
    if (status == NATS_OK) status = natsSubscription_SetPendingLimits(subscription, -1, -1);
    if (status == NATS_OK) status = natsConnection_FlushTimeout(session.connection(), 10'000);
    if (status != NATS_OK) return fail("cannot subscribe", status);
    std::cerr << "subscribed " << options.subject << std::endl;

    static char buffer[64 * 1024];
    std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    std::unordered_set<std::string> seen;
    seen.reserve(options.count);
    int result = 0;
    while (!stopping && seen.size() < options.count) {
        natsMsg* message = nullptr;
        status = natsSubscription_NextMsg(&message, subscription, 100);
        if (status == NATS_TIMEOUT) {
            std::fflush(stdout);  // the caller watches the output grow
            continue;
        }
        if (status != NATS_OK) {
            result = fail("receiving", status);
            break;
        }
        std::string payload(natsMsg_GetData(message), static_cast<std::size_t>(natsMsg_GetDataLength(message)));
        if (options.jetstream) natsMsg_Ack(message, nullptr);
        natsMsg_Destroy(message);
        if (seen.insert(payload).second) {
            payload += '\n';
            std::fwrite(payload.data(), 1, payload.size(), stdout);
        }
    }
    std::fflush(stdout);
    natsSubscription_Destroy(subscription);
    return result;
}

void count_failure(jsCtx* /*js*/, jsPubAckErr* /*error*/, void* closure) {
    ++*static_cast<std::size_t*>(closure);
}

int publish(const Options& options) {
    const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    Session session;
    if (auto status = session.connect(options.url); status != NATS_OK) return fail("cannot connect", status);
    std::size_t failures = 0;
    if (options.jetstream) {
        if (auto status = session.open_jetstream(options.window, count_failure, &failures); status != NATS_OK)
            return fail("no JetStream context", status);
    }
    for (std::size_t at = 0; at < input.size();) {
        auto end = input.find('\n', at);
        if (end == std::string::npos) end = input.size();
        const auto* data = input.data() + at;
        const auto length = static_cast<int>(end - at);
        const auto status = options.jetstream
                                ? js_PublishAsync(session.js(), options.subject.c_str(), data, length, nullptr)
                                : natsConnection_Publish(session.connection(), options.subject.c_str(), data, length);
        if (status != NATS_OK) return fail("cannot publish", status);
        at = end + 1;
    }
    if (options.jetstream) {
        jsPubOptions wait;
        jsPubOptions_Init(&wait);
        wait.MaxWait = 120'000;
        if (auto status = js_PublishAsyncComplete(session.js(), &wait); status != NATS_OK)
            return fail("waiting for the publish acknowledgements", status);
        if (failures != 0) {
            std::cerr << "nats_bench: error: " << failures << " messages were not stored\n";
            return 1;
        }
    }
    if (auto status = natsConnection_FlushTimeout(session.connection(), 120'000); status != NATS_OK)
        return fail("cannot flush", status);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    std::string command;
    po::options_description described("Options");
    // clang-format off
    described.add_options()
        ("url", po::value(&options.url)->default_value(options.url), "the NATS server")
        ("subject", po::value(&options.subject), "subject to publish to, subscribe to or store")
        ("name", po::value(&options.stream), "stream: the stream's name")
        ("stream", po::value(&options.stream), "sub --jetstream: the stream to consume")
        ("count", po::value(&options.count), "sub: distinct payloads to wait for")
        ("jetstream", po::bool_switch(&options.jetstream), "through JetStream")
        ("window", po::value(&options.window)->default_value(options.window),
         "pub --jetstream: publish acknowledgements outstanding at most")
        ("help,h", "show this help");
    // clang-format on
    po::options_description hidden;
    hidden.add_options()("command", po::value(&command));
    po::options_description all;
    all.add(described).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1);
    try {
        po::variables_map given;
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), given);
        po::notify(given);
        if (given.count("help")) {
            std::cout << "Usage: nats_bench stream|sub|pub --url URL --subject SUBJECT [options]\n\n" << described;
            return 0;
        }
    } catch (const po::error& e) {
        std::cerr << "nats_bench: error: " << e.what() << '\n';
        return 2;
    }
    const auto usage = [](std::string_view what) {
        std::cerr << "nats_bench: error: " << what << '\n';
        return 2;
    };
    if (options.subject.empty()) return usage("--subject is required");
    if (options.window <= 0) return usage("--window must be positive");
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    if (command == "stream") return options.stream.empty() ? usage("stream needs --name") : make_stream(options);
    if (command == "sub") {
        if (options.count == 0) return usage("sub needs --count N (positive)");
        if (options.jetstream && options.stream.empty()) return usage("sub --jetstream needs --stream NAME");
        return subscribe(options);
    }
    if (command == "pub") return publish(options);
    return usage("unknown command '" + command + "' (stream, sub or pub)");
}
