#pragma once
// Numeric command-line options with a documented range. Boost.Program_options reads "-1" into an
// unsigned by wrapping it to 2^64-1; these read the text themselves and refuse a value outside
// [min, max], or one that is not a number, as a usage error naming the option and the range.
//
//   ("count,n", cli::whole_number(&options.count, 1, 1'000'000)->value_name("N"), "... (1-1000000)")

#include <boost/program_options/value_semantic.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::cli {

// A whole number in [min, max]: digits only. ExitCode::usage naming `option` and the range otherwise.
[[nodiscard]] Result<std::uint64_t> parse_whole_number(std::string_view text, std::string_view option,
                                                       std::uint64_t min, std::uint64_t max);

// Seconds in [min, max]: digits with an optional fraction ("1.5"). ExitCode::usage otherwise.
[[nodiscard]] Result<double> parse_seconds(std::string_view text, std::string_view option, double min, double max);

// Program_options values that parse with the functions above while the command line is read, so
// a bad value stops the tool before it does anything. The target may be null (read it from the
// variables_map instead). Throws a boost::program_options error naming the option: run_tool
// turns it into exit 2.
[[nodiscard]] boost::program_options::typed_value<std::uint64_t>* whole_number(std::uint64_t* target, std::uint64_t min,
                                                                               std::uint64_t max);
[[nodiscard]] boost::program_options::typed_value<double>* seconds(double* target, double min, double max);

// A duration option documented in seconds (SECS: "10"), which takes the units of
// parse_duration too ("10s", "5m"); read with parse_duration, the range named in seconds.
// `target` holds the default (shown in seconds by --help) and gets the value given.
[[nodiscard]] boost::program_options::typed_value<std::uint64_t>* duration_seconds(std::chrono::milliseconds* target,
                                                                                   std::chrono::seconds min,
                                                                                   std::chrono::seconds max);

}  // namespace aegis::cli
