#include "core/log_throttle.h"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using aegis::LogThrottle;

TEST_CASE("a burst is one line now and one line for its tail", "[log_throttle]") {
    LogThrottle throttle(60s);
    const auto t0 = LogThrottle::Clock::time_point{} + 1h;
    CHECK(throttle.note("host42", 2, t0) == std::optional<std::uint64_t>(2));
    CHECK_FALSE(throttle.note("host42", 3, t0 + 1s).has_value());
    CHECK_FALSE(throttle.note("host42", 4, t0 + 59s).has_value());
    // Another key has its own interval.
    CHECK(throttle.note("host43", 1, t0 + 2s) == std::optional<std::uint64_t>(1));
    REQUIRE(throttle.next_due() == t0 + 60s);
    CHECK(throttle.due(t0 + 59s).empty());
    const auto tail = throttle.due(t0 + 60s);
    REQUIRE(tail.size() == 1);
    CHECK(tail.at(0) == std::pair<std::string, std::uint64_t>{"host42", 7});
    CHECK_FALSE(throttle.next_due().has_value());  // nothing held back any more
}

TEST_CASE("the next line after an interval carries what was held back", "[log_throttle]") {
    LogThrottle throttle(1s);
    const auto t0 = LogThrottle::Clock::time_point{} + 1h;
    CHECK(throttle.note("x", 1, t0) == std::optional<std::uint64_t>(1));
    CHECK_FALSE(throttle.note("x", 5, t0 + 100ms).has_value());
    CHECK(throttle.note("x", 1, t0 + 1s) == std::optional<std::uint64_t>(6));
    CHECK_FALSE(throttle.next_due().has_value());
    // A key quiet for a whole interval is forgotten: its next event is logged at once.
    CHECK(throttle.due(t0 + 3s).empty());
    CHECK(throttle.note("x", 1, t0 + 3s + 1ms) == std::optional<std::uint64_t>(1));
}
