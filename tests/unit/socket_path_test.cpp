// Where the tools look for a broker: --socket, $AEGIS_SOCKET, the user's own broker, then the
// system service's socket.

#include "ipc/socket_path.h"

#include <catch2/catch.hpp>
#include <set>

namespace ipc = aegis::ipc;
using std::filesystem::path;

namespace {

const path kUser = "/run/user/1000/aegis/broker.sock";
const path kSystem = "/run/aegis/broker.sock";

[[nodiscard]] path choose(std::string_view option, const char* environment, std::set<path> present) {
    return ipc::choose_broker_socket(option, environment, kUser, kSystem,
                                     [&present](const path& candidate) { return present.count(candidate) > 0; });
}

}  // namespace

TEST_CASE("the --socket option wins over everything", "[socket_path]") {
    CHECK(choose("/tmp/mine.sock", "/tmp/env.sock", {kUser, kSystem}) == path("/tmp/mine.sock"));
}

TEST_CASE("AEGIS_SOCKET comes next; an empty one counts as unset", "[socket_path]") {
    CHECK(choose("", "/tmp/env.sock", {kUser, kSystem}) == path("/tmp/env.sock"));
    CHECK(choose("", "", {kSystem}) == kSystem);
}

TEST_CASE("the user's own broker comes before the system service", "[socket_path]") {
    CHECK(choose("", nullptr, {kUser, kSystem}) == kUser);
    CHECK(choose("", nullptr, {kUser}) == kUser);
}

TEST_CASE("the system service's socket is used when the user runs no broker", "[socket_path]") {
    CHECK(choose("", nullptr, {kSystem}) == kSystem);
}

TEST_CASE("with no broker anywhere the user's default is named", "[socket_path]") {
    CHECK(choose("", nullptr, {}) == kUser);
}

TEST_CASE("the system socket is /run/aegis/broker.sock", "[socket_path]") {
    CHECK(ipc::kSystemSocketPath == "/run/aegis/broker.sock");
}
