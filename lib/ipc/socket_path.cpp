#include "ipc/socket_path.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ipc/unix_socket.h"

namespace aegis::ipc {

std::filesystem::path default_socket_path() {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    if (runtime != nullptr && runtime[0] == '/') return std::filesystem::path(runtime) / "aegis" / "broker.sock";
    return std::filesystem::path(fmt::format("/tmp/aegis-{}", ::getuid())) / "broker.sock";
}

std::filesystem::path resolve_socket_path(std::string_view option) {
    if (!option.empty()) return std::filesystem::path(option);
    const char* env = std::getenv("AEGIS_SOCKET");
    if (env != nullptr && env[0] != '\0') return std::filesystem::path(env);
    return default_socket_path();
}

Result<void> prepare_socket_directory(const std::filesystem::path& socket) {
    auto directory = socket.parent_path();
    if (directory.empty()) directory = ".";
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(ExitCode::failure, "cannot create socket directory {}: {}", directory.string(),
                          std::strerror(errno));
    }
    struct stat info {};
    if (::stat(directory.c_str(), &info) != 0) {
        return make_error(ExitCode::failure, "cannot read socket directory {}: {}", directory.string(),
                          std::strerror(errno));
    }
    if (!S_ISDIR(info.st_mode)) return make_error(ExitCode::failure, "{} is not a directory", directory.string());
    if (info.st_uid != ::getuid()) {
        return make_error(ExitCode::failure, "refusing socket directory {}: owned by uid {}, not {}",
                          directory.string(), info.st_uid, ::getuid());
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return make_error(ExitCode::failure, "refusing socket directory {}: writable by group or others (mode {:o})",
                          directory.string(), info.st_mode & 07777);
    }
    return {};
}

Result<void> claim_socket_path(const std::filesystem::path& socket) {
    struct stat info {};
    if (::lstat(socket.c_str(), &info) != 0) {
        if (errno == ENOENT) return {};
        return make_error(ExitCode::failure, "cannot check {}: {}", socket.string(), std::strerror(errno));
    }
    if (!S_ISSOCK(info.st_mode)) {
        return make_error(ExitCode::failure, "{} exists and is not a socket; refusing to replace it", socket.string());
    }
    const auto probe = try_connect_unix(socket);
    if (std::holds_alternative<UniqueFd>(probe)) {
        return make_error(ExitCode::failure, "a broker is already running on {}", socket.string());
    }
    if (std::get<int>(probe) != ECONNREFUSED) {
        return make_error(ExitCode::failure, "cannot probe {}: {}", socket.string(),
                          std::strerror(std::get<int>(probe)));
    }
    if (::unlink(socket.c_str()) != 0 && errno != ENOENT) {
        return make_error(ExitCode::failure, "cannot remove stale socket {}: {}", socket.string(),
                          std::strerror(errno));
    }
    return {};
}

}  // namespace aegis::ipc
