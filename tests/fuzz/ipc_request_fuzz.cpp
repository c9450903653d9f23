// Request headers of the local socket protocol (PROTOCOL.md §8.3) as the broker parses them,
// from JSON text. The codec hands on only JSON objects, so only objects go further.
// Invariants: parse_request never throws; a parsed request turned back into a header parses
// again to the same kind of request.

#include "fuzz_support.h"
#include "ipc/messages.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto header = nlohmann::json::parse(data, data + size, nullptr, false);
    if (header.is_discarded() || !header.is_object()) return 0;

    const auto parsed = ipc::parse_request(header);
    const auto* request = std::get_if<ipc::Request>(&parsed);
    if (request == nullptr) return 0;
    const nlohmann::json rebuilt = std::visit([](const auto& body) { return ipc::to_header(body); }, request->body);
    const auto again = ipc::parse_request(rebuilt);
    const auto* reparsed = std::get_if<ipc::Request>(&again);
    check(reparsed != nullptr && reparsed->body.index() == request->body.index());
    return 0;
}
