#pragma once
// aegis-stat's views of the local broker (status.cpp): one report (human, --json or
// --prometheus), the --check line, and --watch, which redraws the report until interrupted.

#include <chrono>

#include "options.h"

namespace aegis::stat {

// Each returns the exit status, an error reported once.
[[nodiscard]] int show_status(const Options& options, std::chrono::milliseconds timeout);
[[nodiscard]] int check_status(const Options& options, std::chrono::milliseconds timeout);
[[nodiscard]] int watch_status(const Options& options, std::chrono::milliseconds timeout,
                               std::chrono::milliseconds every);

}  // namespace aegis::stat
