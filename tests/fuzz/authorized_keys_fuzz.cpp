// The gateway's authorized-keys file (man aegis-gateway(1)) as text. Invariants: parsing never
// fails as a whole; every identity kept has a valid id, valid narrowing patterns, keys sharing an
// id (a key rollover) share its role and narrowing, and the line that defined it parses alone to
// the same grant.

#include <map>

#include "channel/channel.h"
#include "fuzz_support.h"
#include "gateway/authorized_keys.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

// Line `number` (from 1) of `text`, without its newline.
std::string_view line_of(std::string_view text, std::size_t number) {
    std::size_t start = 0;
    for (std::size_t i = 1; i < number; ++i) start = text.find('\n', start) + 1;
    return text.substr(start, text.find('\n', start) - start);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = as_text(ByteView(data, size));
    const auto keys = gateway::parse_authorized_keys(text, "authorized");

    std::map<std::string, const gateway::AuthorizedIdentity*> first_of_id;
    const auto identities = keys.identities();
    check(identities.size() == keys.size());
    for (const auto* identity : identities) {
        check(channel::validate_id(identity->id).ok());
        const auto [first, added] = first_of_id.emplace(identity->id, identity);
        if (!added) {
            check(first->second->key != identity->key && first->second->role == identity->role &&
                  first->second->publish_narrowing == identity->publish_narrowing &&
                  first->second->subscribe_narrowing == identity->subscribe_narrowing);
        }
        if (identity->publish_narrowing) check(channel::validate_pattern(*identity->publish_narrowing).ok());
        if (identity->subscribe_narrowing) check(channel::validate_pattern(*identity->subscribe_narrowing).ok());
        check(keys.find(identity->key) == identity);
        check(identity->line >= 1);
        const auto alone = gateway::parse_authorized_line(line_of(text, identity->line));
        check(alone.ok() && alone->key == identity->key && alone->same_grant(*identity));
    }
    (void)gateway::parse_authorized_line(text);
    return 0;
}
