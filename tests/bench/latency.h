#pragma once
// Latency samples and their percentiles, printed as JSON members by the benchmark drivers.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::bench {

class Latencies {
public:
    void add(double ms) { samples_.push_back(ms); }
    [[nodiscard]] std::size_t count() const { return samples_.size(); }
    [[nodiscard]] const std::vector<double>& samples() const { return samples_; }

    // Nearest-rank percentile (p in 0..100); 0 without samples.
    [[nodiscard]] double percentile(double p) {
        if (samples_.empty()) return 0;
        std::sort(samples_.begin(), samples_.end());
        const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_.size())));
        return samples_[std::clamp<std::size_t>(rank, 1, samples_.size()) - 1];
    }

    // "NAME_p50_ms": ..., "NAME_p99_ms": ..., "NAME_max_ms": ... (no braces, no trailing comma).
    [[nodiscard]] std::string json_members(std::string_view name) {
        return fmt::format(R"("{0}_p50_ms": {1:.3f}, "{0}_p99_ms": {2:.3f}, "{0}_max_ms": {3:.3f})", name,
                           percentile(50), percentile(99), percentile(100));
    }

private:
    std::vector<double> samples_;
};

}  // namespace aegis::bench
