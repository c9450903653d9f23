#pragma once
// What this build is: the source revision and the versions of the libraries it was compiled
// against (--version).

#include <string>

namespace aegis {

// "git 1a2b3c4d5e6f; libsodium 1.0.18, OpenSSL 3.0.x, SQLite 3.40.1, Boost 1.81.0"
[[nodiscard]] std::string build_info();
// The source revision alone ("1a2b3c4d5e6f", "-dirty" when built from a changed tree, "unknown").
[[nodiscard]] std::string source_revision();

}  // namespace aegis
