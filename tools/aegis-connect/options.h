#pragma once
// aegis-connect's command line.

#include <string>
#include <string_view>
#include <vector>

#include "broker/launch.h"
#include "cli/tool.h"
#include "core/log_output.h"

namespace aegis::connect {

struct Options {
    broker::ConnectOptions connect;
    bool foreground = false;
    bool stop = false;
    bool reconnect = false;
    cli::CommonOptions common;  // --help, --version (--socket is connect.socket)
    bool check_config = false;
    bool check = false;  // --check: test the path to the gateway, start nothing
    bool json = false;   // --check --json
    log::Level log_level = log::Level::info;
    log::Format log_format = log::Format::text;
    // What the configuration file got wrong, each "FILE:LINE: what" (--config, connect.conf).
    std::vector<std::string> config_problems;
};

// Read when it exists and no --config names another file.
inline constexpr std::string_view kDefaultConfig = "/etc/aegis/connect.conf";

// --check URL: each step of the path to the gateway on a line of its own (or one JSON object),
// the first failure on stderr; writes nothing (check.cpp).
[[nodiscard]] int run_check(const Options& options);

// Throws boost::program_options::error for a bad command line (cli::run_tool makes it exit 2).
[[nodiscard]] Options parse_options(int argc, char** argv);

}  // namespace aegis::connect
