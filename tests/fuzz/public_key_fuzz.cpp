// Public key lines (PROTOCOL.md §2) as given on command lines and in files. Invariant: a line
// that parses formats back to a line that parses to the same key and comment.

#include "fuzz_support.h"
#include "identity/keyfile.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto parsed = identity::parse_public_key_line(as_text(ByteView(data, size)));
    if (!parsed) return 0;
    const std::string line = identity::format_public_key_line(parsed->key, parsed->comment);
    const auto again = identity::parse_public_key_line(line);
    check(again.ok() && again->key == parsed->key && again->comment == parsed->comment);
    return 0;
}
