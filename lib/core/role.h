#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace aegis {

// What an authenticated identity is: a host agent, or a backend service that manages agents.
enum class Role : std::uint8_t { agent = 1, backend = 2 };

[[nodiscard]] constexpr std::string_view to_string(Role role) {
    return role == Role::agent ? "agent" : "backend";
}

[[nodiscard]] constexpr std::optional<Role> parse_role(std::string_view text) {
    if (text == "agent") return Role::agent;
    if (text == "backend") return Role::backend;
    return std::nullopt;
}

}  // namespace aegis
