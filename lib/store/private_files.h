#pragma once
// State directories and files hold payloads in clear, so only their owner may use them, as ssh
// requires of its keys: directories 0700, files 0600, owned by the user running the daemon (or
// root). One that is not is refused, never repaired behind the operator's back.

#include <filesystem>

#include "core/result.h"

namespace aegis::store {

// Creates `directory` when missing (missing parents as the umask says, the directory itself
// 0700), then checks it. Refused (ExitCode::bad_input, with the fix in the message): not a
// directory, owned by another user than the one running (root excepted), or open to the group
// or others in any way. ExitCode::failure: it cannot be created or written.
[[nodiscard]] Result<void> prepare_state_directory(const std::filesystem::path& directory);

// An existing `file` (symbolic links followed) must be a regular file owned by the user running
// (or root) that the group and others cannot use; refused as above. A missing file is fine.
[[nodiscard]] Result<void> check_private_file(const std::filesystem::path& file);

// Creates `file` empty with mode 0600 when it does not exist yet (a file SQLite makes takes
// 0644 from the umask, and gives its -wal and -shm files the main file's mode).
[[nodiscard]] Result<void> create_private_file(const std::filesystem::path& file);

}  // namespace aegis::store
