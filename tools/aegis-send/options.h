#pragma once
// aegis-send's command line, checked and turned into what to send.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "cli/payload_source.h"
#include "cli/tool.h"
#include "core/result.h"
#include "ipc/messages.h"

namespace aegis::send {

struct Options {
    cli::CommonOptions common;    // --socket, --timeout, --help, --version
    ipc::PublishRequest request;  // channel, priority, ttl, headers, kind, wait_ack
    std::optional<std::string> message;
    std::optional<std::string> file;
    cli::Split split = cli::Split::whole;
    std::uint64_t count = 1;
    bool print_id = false;
    bool json = false;
    bool is_request = false;
    std::string reply_to;
    std::uint64_t replies = 1;
    std::chrono::milliseconds timeout{30'000};
};

// Parses and checks; a usage error says what is wrong.
[[nodiscard]] Result<Options> parse_options(int argc, char** argv);

}  // namespace aegis::send
