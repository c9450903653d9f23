#pragma once
// aegis-stat --fleet URL: a gateway's view of its fleet (GET /sessions on its admin endpoint).

#include <chrono>
#include <string>

namespace aegis::stat {

// Prints the table (or the JSON as the gateway sent it) and returns the exit status: 0, 1 when the
// gateway cannot be reached or answers otherwise, 2 for a bad URL, 5 when it does not answer in time.
[[nodiscard]] int show_fleet(const std::string& url, bool json, std::chrono::milliseconds timeout);

}  // namespace aegis::stat
