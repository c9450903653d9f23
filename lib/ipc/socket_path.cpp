#include "ipc/socket_path.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

std::filesystem::path choose_broker_socket(std::string_view option, const char* environment,
                                           const std::filesystem::path& user_default,
                                           const std::filesystem::path& system_socket,
                                           const std::function<bool(const std::filesystem::path&)>& exists) {
    if (!option.empty()) return std::filesystem::path(option);
    if (environment != nullptr && environment[0] != '\0') return std::filesystem::path(environment);
    if (!exists(user_default) && exists(system_socket)) return system_socket;
    return user_default;
}

std::filesystem::path find_broker_socket(std::string_view option) {
    return choose_broker_socket(option, std::getenv("AEGIS_SOCKET"), default_socket_path(),
                                std::filesystem::path(kSystemSocketPath), [](const std::filesystem::path& path) {
                                    struct stat info {};
                                    return ::lstat(path.c_str(), &info) == 0;
                                });
}

Result<void> prepare_socket_directory(const std::filesystem::path& socket, std::optional<gid_t> group) {
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
    if (!group) return {};
    // The group may enter the directory, not list or change it.
    if (info.st_gid != *group && ::chown(directory.c_str(), static_cast<uid_t>(-1), *group) != 0) {
        return make_error(ExitCode::failure, "cannot give socket directory {} to group {}: {}", directory.string(),
                          *group, std::strerror(errno));
    }
    if ((info.st_mode & 07777) != 0750 && ::chmod(directory.c_str(), 0750) != 0) {
        return make_error(ExitCode::failure, "cannot set the mode of socket directory {}: {}", directory.string(),
                          std::strerror(errno));
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
