#pragma once
// aegis-queue's command line: a command (ls, show, retry, drop, purge, stats, cursors,
// cursor-rm), its operands and the options, as given.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/tool.h"

namespace aegis::queue {

inline constexpr std::string_view kTool = "aegis-queue";

struct Options {
    cli::CommonOptions common;  // --socket, --timeout, --help, --version
    std::string command;
    std::vector<std::string> args;
    std::string state = "all";
    std::uint64_t limit = 100;
    bool dead = false;
    bool all = false;
    bool yes = false;
    bool json = false;
    std::string ttl;         // retry: a fresh TTL for expired messages
    bool ttl_given = false;  // even an empty one, which is then refused
};

// Throws boost::program_options::error for a bad command line (cli::run_tool makes it exit 2).
[[nodiscard]] Options parse_options(int argc, char** argv);

// A usage error pointing at --help.
[[nodiscard]] Error usage(std::string_view what);

// What every command but cursor-rm checks first: `want` message ids (0 or 1), then --ttl,
// which only retry takes.
[[nodiscard]] Result<void> check_operands(const Options& o, std::size_t want);

}  // namespace aegis::queue
