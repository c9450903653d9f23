#include "ipc/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aegis::ipc {

void UniqueFd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::variant<UniqueFd, int> try_connect_unix(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const auto& text = path.native();
    if (text.size() >= sizeof(address.sun_path)) return ENAMETOOLONG;
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno;
    int result = 0;
    do {
        result = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    } while (result != 0 && errno == EINTR);
    if (result != 0) return errno;
    return fd;
}

Result<UniqueFd> connect_unix(const std::filesystem::path& path) {
    auto outcome = try_connect_unix(path);
    if (auto* fd = std::get_if<UniqueFd>(&outcome)) return std::move(*fd);
    const int error = std::get<int>(outcome);
    switch (error) {
        case ENOENT:
            return make_error(ExitCode::unreachable,
                              "no broker running (no socket at {}; start one with aegis-connect)", path.string());
        case ECONNREFUSED: return make_error(ExitCode::unreachable, "no broker listening on {}", path.string());
        case EACCES:
        case EPERM: return make_error(ExitCode::unreachable, "permission denied on {}", path.string());
        case ENAMETOOLONG: return make_error(ExitCode::unreachable, "socket path too long: {}", path.string());
        default:
            return make_error(ExitCode::unreachable, "cannot connect to {}: {}", path.string(), std::strerror(error));
    }
}

}  // namespace aegis::ipc
