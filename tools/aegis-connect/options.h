#pragma once
// aegis-connect's command line.

#include <string>

#include "broker/launch.h"

namespace aegis::connect {

struct Options {
    broker::ConnectOptions connect;
    bool foreground = false;
    bool stop = false;
    bool reconnect = false;
    bool help = false;
    bool version = false;
    std::string help_text;
};

// Throws boost::program_options::error for a bad command line (cli::run_tool makes it exit 2).
[[nodiscard]] Options parse_options(int argc, char** argv);

}  // namespace aegis::connect
