// Response and event headers of the local socket protocol (PROTOCOL.md §8.3-8.5) as the tools
// read them from the broker, from JSON text. The codec hands on only JSON objects, so only
// objects go further. Invariants: neither reader throws; an error read from a response carries
// an exit code a tool may use; a message event that reads has a channel and a payload as given.

#include "fuzz_support.h"
#include "ipc/messages.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto header = nlohmann::json::parse(data, data + size, nullptr, false);
    if (header.is_discarded() || !header.is_object()) return 0;

    if (const auto error = ipc::response_error(header)) {
        check(error->exit >= ExitCode::failure && error->exit <= ExitCode::bad_input);
    }
    const Bytes payload{0x68, 0x69};
    if (const auto message = ipc::parse_message_event(header, payload)) {
        check(message->payload == payload);
    }
    return 0;
}
