#pragma once
// aegis-sub's command line, checked.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/receiver.h"
#include "cli/tool.h"
#include "core/result.h"

namespace aegis::sub {

struct Options {
    cli::CommonOptions common;  // --socket, --help, --version
    std::vector<std::string> patterns;
    cli::ReceiveOptions receive;  // what to do with each message (-C, -W, --durable, --exec, ...)
    bool reset = false;           // replace the durable cursor's stored patterns
};

[[nodiscard]] Result<Options> parse_options(int argc, char** argv);

}  // namespace aegis::sub
