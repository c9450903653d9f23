// Channel names and patterns (PROTOCOL.md §7) as they arrive in publish and subscribe requests
// and in the authorized file. The input is split into three strings a, b, c. Invariants:
//   matches(a, b) implies a is a valid pattern and b a valid name;
//   covers(a, b) implies both are valid patterns;
//   a valid name is a valid pattern that matches itself; a valid pattern covers itself;
//   covers(a, b) and matches(b, c) imply matches(a, c) (containment is exact, so never wider);
//   an agent's policy only lets it publish valid names under agent.<id>.

#include "channel/channel.h"
#include "fuzz_support.h"

using namespace aegis;
using namespace aegis::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    InputCursor input(data, size);
    const std::string_view a = as_text(input.piece());
    const std::string_view b = as_text(input.piece());
    const std::string_view c = as_text(input.rest());

    for (const std::string_view text : {a, b, c}) {
        const bool name = channel::validate_name(text).ok();
        const bool pattern = channel::validate_pattern(text).ok();
        if (name) check(pattern && channel::matches(text, text));
        if (pattern) check(channel::covers(text, text));
        check(text.size() <= channel::kMaxNameLength || !pattern);
        (void)channel::validate_id(text);
    }

    if (channel::matches(a, b)) check(channel::validate_pattern(a).ok() && channel::validate_name(b).ok());
    if (channel::covers(a, b)) {
        check(channel::validate_pattern(a).ok() && channel::validate_pattern(b).ok());
        if (channel::matches(b, c)) check(channel::matches(a, c));
    }

    if (channel::validate_id(a).ok()) {
        const channel::AccessPolicy policy(Role::agent, std::string(a), std::nullopt, std::string(b));
        if (policy.may_publish(c)) {
            check(channel::validate_name(c).ok());
            check(c.starts_with("agent." + std::string(a) + "."));
        }
        if (policy.may_subscribe(c)) check(channel::validate_pattern(c).ok());
    }
    return 0;
}
