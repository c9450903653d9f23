#include "cli/number_option.h"

#include <boost/program_options/errors.hpp>
#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

#include "cli/duration.h"

namespace aegis::cli {

namespace po = boost::program_options;

namespace {

// Program_options fills in the option's name ("--count") where the message says %canonical_option%.
class RangeError final : public po::validation_error {
public:
    explicit RangeError(const std::string& message) : po::validation_error(po::validation_error::invalid_option_value) {
        m_error_template = message;
    }
};

[[nodiscard]] bool all_digits(std::string_view text) {
    if (text.empty()) return false;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

template <typename T, typename Parse>
class RangedValue final : public po::typed_value<T> {
public:
    RangedValue(T* target, T min, T max, Parse parser)
        : po::typed_value<T>(target), min_(min), max_(max), parse_(std::move(parser)) {}

    void xparse(boost::any& value_store, const std::vector<std::string>& tokens) const override {
        po::validators::check_first_occurrence(value_store);
        auto parsed = parse_(po::validators::get_single_string(tokens), "%canonical_option%", min_, max_);
        if (!parsed) throw RangeError(parsed.error().message);
        value_store = *parsed;
    }

private:
    T min_;
    T max_;
    Parse parse_;
};

template <typename T, typename Parse>
[[nodiscard]] po::typed_value<T>* ranged(T* target, T min, T max, Parse parser) {
    return new RangedValue<T, Parse>(target, min, max, std::move(parser));  // owned by the options_description
}

}  // namespace

Result<std::uint64_t> parse_whole_number(std::string_view text, std::string_view option, std::uint64_t min,
                                         std::uint64_t max) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [used, failure] = std::from_chars(text.data(), end, value);  // too big for 64 bits: a failure
    const bool number = all_digits(text) && used == end && failure == std::errc();
    if (!number || value < min || value > max) {
        // A run of digits too long for 64 bits is out of range too.
        return make_error(ExitCode::usage, "{} needs a whole number from {} to {}, not '{}'", option, min, max, text);
    }
    return value;
}

Result<double> parse_seconds(std::string_view text, std::string_view option, double min, double max) {
    const auto dot = text.find('.');
    const auto whole = text.substr(0, dot);
    const auto fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    const bool shaped = (all_digits(whole) || (whole.empty() && !fraction.empty())) &&
                        (dot == std::string_view::npos || all_digits(fraction));
    double value = 0;
    const auto* end = text.data() + text.size();
    const bool number = shaped && [&] {
        const auto [used, failure] = std::from_chars(text.data(), end, value);
        return used == end && failure == std::errc() && std::isfinite(value);
    }();
    if (!number || value < min || value > max) {
        return make_error(ExitCode::usage, "{} needs a number of seconds from {} to {}, not '{}'", option, min, max,
                          text);
    }
    return value;
}

po::typed_value<std::uint64_t>* duration_seconds(std::chrono::milliseconds* target, std::chrono::seconds min,
                                                 std::chrono::seconds max) {
    using std::chrono::milliseconds;
    // In milliseconds: Program_options cannot print or read a std::chrono value itself.
    const auto parse = [](std::string_view text, std::string_view option, std::uint64_t low,
                          std::uint64_t high) -> Result<std::uint64_t> {
        const auto range = [](std::uint64_t ms) { return milliseconds(static_cast<milliseconds::rep>(ms)); };
        auto parsed = parse_duration(text, option, range(low), range(high));
        if (parsed) return static_cast<std::uint64_t>(parsed->count());
        return make_error(
            ExitCode::usage,
            "{} needs a number of seconds from {} to {} (or a duration such as 250ms, 10s or 5m), not '{}'", option,
            low / 1000, high / 1000, text);
    };
    const auto ms = [](std::chrono::seconds s) { return static_cast<std::uint64_t>(milliseconds(s).count()); };
    auto* value = ranged<std::uint64_t>(nullptr, ms(min), ms(max), parse);
    value->default_value(static_cast<std::uint64_t>(target->count()),
                         std::to_string(std::chrono::ceil<std::chrono::seconds>(*target).count()));
    value->notifier([target](std::uint64_t given) { *target = milliseconds(static_cast<milliseconds::rep>(given)); });
    return value;
}

po::typed_value<std::uint64_t>* whole_number(std::uint64_t* target, std::uint64_t min, std::uint64_t max) {
    return ranged(target, min, max, &parse_whole_number);
}

po::typed_value<double>* seconds(double* target, double min, double max) {
    return ranged(target, min, max, &parse_seconds);
}

}  // namespace aegis::cli
