#pragma once
// aegis-keygen -s (certify keys with an operator CA) and -L (show a certificate).

#include <cstdint>
#include <string_view>
#include <utility>

#include "core/result.h"
#include "options.h"

namespace aegis::keygen {

// "[FROM:]TO" (man aegis-keygen(1), VALIDITY) at Unix second `now`: the window [from, to).
// ExitCode::usage naming -V and what is wrong.
[[nodiscard]] Result<std::pair<std::uint64_t, std::uint64_t>> parse_validity(std::string_view text, std::uint64_t now);

[[nodiscard]] int sign_keys(const Options& options);
[[nodiscard]] int show_certificate(const Options& options);

}  // namespace aegis::keygen
