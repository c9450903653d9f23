#pragma once
// Where the broker's socket lives and how its directory is made safe (PROTOCOL-local.md §8.1).

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace aegis::ipc {

// $XDG_RUNTIME_DIR/aegis/broker.sock, else /tmp/aegis-<uid>/broker.sock.
[[nodiscard]] std::filesystem::path default_socket_path();
// The --socket option when given, else $AEGIS_SOCKET, else the default.
[[nodiscard]] std::filesystem::path resolve_socket_path(std::string_view option);

// Creates the socket's directory 0700 when missing. Refuses (ExitCode::failure) a directory
// owned by another user, or one that group or others may write to.
[[nodiscard]] Result<void> prepare_socket_directory(const std::filesystem::path& socket);

// Makes `socket` free for a new broker: a live broker there is refused ("a broker is already
// running on PATH"); a stale socket file nobody listens on is removed; anything that is not a
// socket is refused.
[[nodiscard]] Result<void> claim_socket_path(const std::filesystem::path& socket);

}  // namespace aegis::ipc
