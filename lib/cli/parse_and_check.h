#pragma once
// The parse-and-check tail of a tool whose command line is read into two structs: `Options`,
// what the tool runs with (its `common` member gets the shared options), and `Raw`, the text of
// the options that `check` validates and turns into Options (durations, formats, ...).

#include <string>

#include "cli/tool.h"
#include "core/result.h"

namespace aegis::cli {

// `describe` adds the tool's options and operands to the command line, pointing into the two
// structs. --help and --version return at once, unchecked; a usage error is an Error (or, from
// Program_options, an exception that run_tool turns into exit 2).
template <typename Options, typename Raw>
[[nodiscard]] Result<Options> parse_and_check(int argc, char** argv, const std::string& usage,
                                              void (*describe)(CommandLine&, Options&, Raw&),
                                              Result<void> (*check)(Options&, const Raw&)) {
    Options options;
    Raw raw;
    CommandLine line(usage);
    describe(line, options, raw);
    if (!line.parse(argc, argv, options.common)) return options;
    if (auto checked = check(options, raw); !checked) return checked.take_error();
    return options;
}

}  // namespace aegis::cli
