#include "cli/duration.h"

#include <cmath>
#include <string>

namespace aegis::cli {

namespace {

// Milliseconds per unit; 0 for an unknown suffix.
[[nodiscard]] double unit_ms(std::string_view unit) {
    if (unit.empty() || unit == "s") return 1000;
    if (unit == "ms") return 1;
    if (unit == "m") return 60'000;
    if (unit == "h") return 3'600'000;
    return 0;
}

}  // namespace

std::string duration_text(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    if (ms == 0) return "0";
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view option,
                                                 std::chrono::milliseconds min, std::chrono::milliseconds max) {
    const auto bad = [&] {
        return make_error(ExitCode::usage, "{} needs a duration from {} to {} (such as 250ms, 10s, 5m or 1h), not '{}'",
                          option, duration_text(min), duration_text(max), text);
    };
    std::size_t digits = 0;
    while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) ++digits;
    if (digits == 0) return bad();
    const std::string number(text.substr(0, digits));
    std::size_t used = 0;
    double value = 0;
    try {
        value = std::stod(number, &used);
    } catch (const std::exception&) {
        return bad();
    }
    const double scale = unit_ms(text.substr(digits));
    // 0 only where the range starts at 0 (it means "none" there).
    const bool positive = value > 0 || (value == 0 && min.count() == 0);
    if (used != number.size() || scale == 0 || !positive || !std::isfinite(value)) return bad();
    const double ms = std::ceil(value * scale);
    if (ms < static_cast<double>(min.count()) || ms > static_cast<double>(max.count())) return bad();
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

}  // namespace aegis::cli
