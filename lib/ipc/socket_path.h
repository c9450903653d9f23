#pragma once
// Where the broker's socket lives and how its directory is made safe (PROTOCOL-local.md §8.1).

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

#include "core/result.h"

namespace aegis::ipc {

// $XDG_RUNTIME_DIR/aegis/broker.sock, else /tmp/aegis-<uid>/broker.sock.
[[nodiscard]] std::filesystem::path default_socket_path();
// The --socket option when given, else $AEGIS_SOCKET, else the default: where a broker listens.
[[nodiscard]] std::filesystem::path resolve_socket_path(std::string_view option);

// The system service's socket (aegis-connect.service), which the tools try last.
inline constexpr std::string_view kSystemSocketPath = "/run/aegis/broker.sock";

// Where the tools look for a broker: the --socket option, else $AEGIS_SOCKET, else the user's own
// broker (default_socket_path()) when its socket exists, else the system service's when that
// exists, else the user's default (so that "no broker" names the user's path).
[[nodiscard]] std::filesystem::path find_broker_socket(std::string_view option);
// The same choice with its inputs given: `exists` tells whether a path is there.
[[nodiscard]] std::filesystem::path choose_broker_socket(
    std::string_view option, const char* environment, const std::filesystem::path& user_default,
    const std::filesystem::path& system_socket, const std::function<bool(const std::filesystem::path&)>& exists);

// Creates the socket's directory 0700 when missing (0750 for `group`, which it is then given).
// Refuses (ExitCode::failure) a directory owned by another user, or one that group or others may
// write to.
[[nodiscard]] Result<void> prepare_socket_directory(const std::filesystem::path& socket,
                                                    std::optional<gid_t> group = std::nullopt);

// The group named by --socket-group (a name or a number); ExitCode::usage when there is none.
[[nodiscard]] Result<gid_t> lookup_group(std::string_view name);

// Makes `socket` free for a new broker: a live broker there is refused ("a broker is already
// running on PATH"); a stale socket file nobody listens on is removed; anything that is not a
// socket is refused.
[[nodiscard]] Result<void> claim_socket_path(const std::filesystem::path& socket);

}  // namespace aegis::ipc
