// Who may publish and subscribe where: the defaults of DESIGN.md §4, optionally narrowed.

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "channel/channel.h"

namespace aegis::channel {
namespace {

[[nodiscard]] std::vector<std::string> default_publish(Role role, const std::string& id) {
    if (role == Role::agent) return {fmt::format("agent.{}.>", id)};
    return {"backend.>"};
}

[[nodiscard]] std::vector<std::string> default_subscribe(Role role, const std::string& id) {
    if (role == Role::agent) return {fmt::format("backend.{}.>", id), "backend.all.>"};
    return {"agent.>"};
}

}  // namespace

AccessPolicy::AccessPolicy(Role role, std::string id, std::optional<std::string> publish_narrowing,
                           std::optional<std::string> subscribe_narrowing)
    : role_(role),
      id_(std::move(id)),
      publish_narrowing_(std::move(publish_narrowing)),
      subscribe_narrowing_(std::move(subscribe_narrowing)) {
    // An id like "*" or "a.>" would widen agent.<id>.> to other agents' channels: grant nothing.
    if (!validate_id(id_)) return;
    publish_ = default_publish(role_, id_);
    subscribe_ = default_subscribe(role_, id_);
}

Result<AccessPolicy> AccessPolicy::create(Role role, std::string id, std::optional<std::string> publish_narrowing,
                                          std::optional<std::string> subscribe_narrowing) {
    if (auto valid = validate_id(id); !valid) return valid.take_error();
    for (const auto* narrowing : {&publish_narrowing, &subscribe_narrowing}) {
        if (!narrowing->has_value()) continue;
        if (auto valid = validate_pattern(**narrowing); !valid) return valid.take_error();
    }
    return AccessPolicy(role, std::move(id), std::move(publish_narrowing), std::move(subscribe_narrowing));
}

bool AccessPolicy::may_publish(std::string_view name) const {
    // matches() is false for an invalid name or pattern, so every check below fails closed.
    const bool allowed = std::any_of(publish_.begin(), publish_.end(),
                                     [name](const std::string& pattern) { return matches(pattern, name); });
    return allowed && (!publish_narrowing_ || matches(*publish_narrowing_, name));
}

bool AccessPolicy::may_subscribe(std::string_view pattern) const {
    const bool allowed = std::any_of(subscribe_.begin(), subscribe_.end(),
                                     [pattern](const std::string& outer) { return covers(outer, pattern); });
    return allowed && (!subscribe_narrowing_ || covers(*subscribe_narrowing_, pattern));
}

}  // namespace aegis::channel
