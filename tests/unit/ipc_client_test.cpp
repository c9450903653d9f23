// The tools' client of the local socket against a scripted broker on a real Unix socket: a
// connection opened without waiting for the hello's answer sends its hello and first request in
// one write, reads the hello's answer first, and fails with the hello's error when refused.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ipc/client.h"
#include "ipc/codec.h"
#include "ipc/messages.h"
#include "store_test_support.h"

namespace ipc = aegis::ipc;
using aegis::ExitCode;
using nlohmann::json;

namespace {

using aegis::test::store_support::TempDir;

// What the scripted broker saw: the frames of its first read, and of all its reads.
struct Seen {
    std::size_t frames_in_first_read = 0;
    std::vector<json> requests;
};

// A broker that accepts one connection and hands each request to `script`, which writes what it
// wants to the descriptor; it stops when the client closes or `script` returns false.
class ScriptedBroker {
public:
    using Script = std::function<bool(int fd, const json& request)>;

    ScriptedBroker(const std::filesystem::path& socket, Script script) : socket_(socket), script_(std::move(script)) {
        listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        socket.string().copy(address.sun_path, sizeof(address.sun_path) - 1);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(listener_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedBroker() {
        if (thread_.joinable()) thread_.join();
        ::close(listener_);
    }
    ScriptedBroker(const ScriptedBroker&) = delete;
    ScriptedBroker& operator=(const ScriptedBroker&) = delete;

    // What it saw, once the client has closed its connection (which ends the conversation).
    [[nodiscard]] Seen finish() {
        if (thread_.joinable()) thread_.join();
        return seen_;
    }

    // Runs on the broker's thread, where a failed REQUIRE could not end the test: a client that
    // has closed (after a refused hello) makes the send fail, and the conversation ends.
    static bool send(int fd, const json& header) {
        const auto frame = ipc::encode_frame(header);
        return ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
    }

private:
    void serve() {
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        ipc::FrameReader reader{ipc::kMaxFrameBytes, ipc::kMaxHeaderBytes};
        std::vector<std::uint8_t> chunk(64 * 1024);
        bool first = true;
        bool going = true;
        while (going) {
            const ssize_t got = ::recv(fd, chunk.data(), chunk.size(), 0);
            if (got <= 0) break;
            reader.feed(aegis::ByteView(chunk.data(), static_cast<std::size_t>(got)));
            for (;;) {
                auto next = reader.next();
                auto* frame = std::get_if<ipc::Frame>(&next);
                if (frame == nullptr) break;
                if (first) ++seen_.frames_in_first_read;
                seen_.requests.push_back(frame->header);
                if (!script_(fd, frame->header)) {
                    going = false;
                    break;
                }
            }
            first = false;
        }
        ::close(fd);
    }

    std::filesystem::path socket_;
    Script script_;
    int listener_ = -1;
    std::thread thread_;
    Seen seen_;
};

json hello_answer(const json& request) {
    return json{{"id", request["id"]},       {"ok", true},
                {"v", ipc::kVersion},        {"versions", json::array({ipc::kVersion})},
                {"features", json::array()}, {"state", "connected"},
                {"refusal", nullptr}};
}

ipc::PublishRequest a_publish() {
    ipc::PublishRequest request;
    request.channel = "agent.host42.x";
    return request;
}

const auto kDeadline = [] { return ipc::deadline_after(std::chrono::seconds(10)); };

}  // namespace

// Answers hello as a broker of this version and each publish with a message id.
bool accepting(int fd, const json& request) {
    if (request["op"] == "hello") return ScriptedBroker::send(fd, hello_answer(request));
    return ScriptedBroker::send(fd, json{{"id", request["id"]}, {"ok", true}, {"message_id", "00ff"}});
}

TEST_CASE("ipc client: open() sends the hello and the first request in one write and reads the hello first", "[ipc]") {
    const TempDir dir;
    const auto path = dir.path / "broker.sock";
    ScriptedBroker broker(path, accepting);
    {
        auto client = ipc::Client::open(path, "test-client");
        REQUIRE(client);
        CHECK(client->hello().is_null());  // nothing read yet
        auto id = client->publish(a_publish(), aegis::as_bytes(std::string("x")), kDeadline());
        REQUIRE(id);
        CHECK(*id == "00ff");
        CHECK(client->hello().value("state", std::string()) == "connected");
    }
    const auto seen = broker.finish();
    REQUIRE(seen.requests.size() == 2);
    CHECK(seen.requests[0]["op"] == "hello");
    CHECK(seen.requests[0]["client"] == "test-client");
    CHECK(seen.requests[1]["op"] == "publish");
    CHECK(seen.frames_in_first_read == 2);
}

TEST_CASE("ipc client: connect() waits for the hello's answer before it returns", "[ipc]") {
    const TempDir dir;
    const auto path = dir.path / "broker.sock";
    ScriptedBroker broker(path, accepting);
    {
        auto client = ipc::Client::connect(path, "test-client", kDeadline());
        REQUIRE(client);
        CHECK(client->hello().value("v", 0) == ipc::kVersion);
        REQUIRE(client->publish(a_publish(), aegis::as_bytes(std::string("x")), kDeadline()));
    }
    const auto seen = broker.finish();
    REQUIRE(seen.requests.size() == 2);
    CHECK(seen.frames_in_first_read == 1);
}

TEST_CASE("ipc client: a refused hello fails the request sent behind it with the hello's error", "[ipc]") {
    const TempDir dir;
    const auto path = dir.path / "broker.sock";
    ScriptedBroker broker(path, [](int fd, const json& request) {
        if (request["op"] == "hello") {
            auto refused = ipc::error_response(
                request["id"], ipc::to_wire(ipc::LocalError{ipc::LocalReason::version_mismatch,
                                                            "local protocol version 1 is not supported"}));
            return ScriptedBroker::send(fd, refused);
        }
        return ScriptedBroker::send(
            fd, ipc::error_response(request["id"], ipc::to_wire(ipc::LocalError{ipc::LocalReason::hello_required,
                                                                                "the first request must be hello"})));
    });
    {
        auto client = ipc::Client::open(path, "test-client");
        REQUIRE(client);
        auto id = client->publish(a_publish(), aegis::as_bytes(std::string("x")), kDeadline());
        REQUIRE_FALSE(id);
        CHECK(id.error().message.find("version 1 is not supported") != std::string::npos);
        CHECK(id.error().exit == ExitCode::failure);
    }
    (void)broker.finish();
}

TEST_CASE("ipc client: a broker that closes during an unanswered hello is named in the error", "[ipc]") {
    const TempDir dir;
    const auto path = dir.path / "broker.sock";
    ScriptedBroker broker(path, [](int, const json&) { return false; });  // closes at the first frame
    {
        auto client = ipc::Client::open(path, "test-client");
        REQUIRE(client);
        auto id = client->publish(a_publish(), aegis::as_bytes(std::string("x")), kDeadline());
        REQUIRE_FALSE(id);
        CHECK(id.error().exit == ExitCode::unreachable);
        CHECK(id.error().message.find("closed the connection during hello") != std::string::npos);
    }
    (void)broker.finish();
}
