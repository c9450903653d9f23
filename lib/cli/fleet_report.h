#pragma once
// aegis-stat --fleet: a gateway's GET /sessions as a table, one identity a line, like
// `tailscale status`.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace aegis::cli {

// The table of a /sessions answer; ExitCode::failure when it is not one.
[[nodiscard]] Result<std::string> fleet_table(const nlohmann::json& answer);

}  // namespace aegis::cli
