#pragma once
// What every tool's main shares: one error line on stderr, the exit code, --version text,
// and turning Boost.Program_options failures into usage errors.

#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace boost::program_options {
class options_description;
}

namespace aegis::cli {

// Prints "<tool>: error: <message>" on stderr and returns the exit code to use.
int report(std::string_view tool, const Error& error);

// Runs a tool's body, turning an option-parsing error or an escaped exception into one
// error line and the matching exit code (usage errors give 2, anything else 1).
int run_tool(std::string_view tool, const std::function<int()>& body);

// --help's table of options, laid out as Program_options does but wrapped at spaces only, so
// that a path or a default is never cut in the middle of a word.
[[nodiscard]] std::string help_table(const boost::program_options::options_description& options);

// "<tool> (Aegis) <version>", then a line with the revision and the libraries' versions.
[[nodiscard]] std::string version_line(std::string_view tool);

}  // namespace aegis::cli
