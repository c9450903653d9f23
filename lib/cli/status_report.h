#pragma once
// aegis-stat: the broker's status object turned into a stable JSON object, a human summary,
// Prometheus text and a Nagios-style check. Pure functions of (status, now).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/result.h"

namespace aegis::cli {

// The documented field names of aegis-stat --json; a field the broker does not report is null.
[[nodiscard]] nlohmann::json stable_status(const nlohmann::json& status, std::uint64_t now_ms);

// "state: connected ..." lines, like tailscale status.
[[nodiscard]] std::string human_status(const nlohmann::json& stable);

// Prometheus text exposition (aegis_broker_* with HELP and TYPE); fields not reported are left out.
[[nodiscard]] std::string prometheus_status(const nlohmann::json& stable);
// The exposition for a broker that cannot be asked: aegis_broker_up 0.
[[nodiscard]] std::string prometheus_broker_down();

struct CheckThresholds {
    std::optional<std::uint64_t> warn_queue;
    std::optional<std::uint64_t> crit_queue;
    std::optional<std::uint64_t> warn_dead;
    std::optional<std::uint64_t> crit_dead;
    std::optional<double> warn_age_s;
    std::optional<double> crit_age_s;
    std::optional<double> crit_disconnected_s;
};

// A warning threshold above its critical one is a usage error.
[[nodiscard]] Result<void> validate_thresholds(const CheckThresholds& thresholds);

enum class CheckState { ok = 0, warning = 1, critical = 2, unknown = 3 };

struct CheckOutcome {
    CheckState state = CheckState::unknown;
    std::string line;  // "AEGIS OK - connected, queue 0 | queue=0;;;0 ..."
};

[[nodiscard]] CheckOutcome evaluate_check(const nlohmann::json& stable, const CheckThresholds& thresholds);
// The line for a broker that cannot be asked.
[[nodiscard]] CheckOutcome unknown_check(const std::string& why);

// "3s", "2m05s", "1h02m", "3d04h"
[[nodiscard]] std::string short_duration(double seconds);

// A member of a JSON object for a table cell: a string as it is, "-" when missing or null, else its JSON.
[[nodiscard]] std::string json_text(const nlohmann::json& object, const char* key);

}  // namespace aegis::cli
