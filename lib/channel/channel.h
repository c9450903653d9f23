#pragma once
// Channel names, patterns and the access rules of DESIGN.md §4 (PROTOCOL.md §7).
// Names are dot-separated tokens of [A-Za-z0-9_-]; in patterns `*` matches one token and
// `>` (last token only) matches one or more remaining tokens.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/role.h"

namespace aegis::channel {

inline constexpr std::size_t kMaxNameLength = 255;

// ExitCode::bad_input with a message saying what is wrong, e.g.
// "invalid channel name 'a..b': empty token".
[[nodiscard]] Result<void> validate_name(std::string_view name);
[[nodiscard]] Result<void> validate_pattern(std::string_view pattern);
// An agent or backend id: one token, and not the reserved word "all".
[[nodiscard]] Result<void> validate_id(std::string_view id);

// Whether a valid pattern matches a valid name. False when either is invalid (fails closed).
[[nodiscard]] bool matches(std::string_view pattern, std::string_view name);
// Whether every name `inner` matches is also matched by `outer` (both valid patterns).
// Exact containment, not an approximation. False when either is invalid (fails closed).
[[nodiscard]] bool covers(std::string_view outer, std::string_view inner);

// What one identity may publish to and subscribe to.
class AccessPolicy {
public:
    // The defaults: an agent publishes agent.<id>.> and subscribes backend.<id>.> and
    // backend.all.>; a backend publishes backend.> and subscribes agent.>. The optional
    // narrowing patterns (pub=, sub= in the authorized file) restrict the defaults further.
    AccessPolicy(Role role, std::string id, std::optional<std::string> publish_narrowing = std::nullopt,
                 std::optional<std::string> subscribe_narrowing = std::nullopt);

    // The constructor cannot fail, so it fails closed: an invalid id grants nothing and an
    // invalid narrowing pattern refuses everything it would narrow. create() says why instead.
    [[nodiscard]] static Result<AccessPolicy> create(Role role, std::string id,
                                                     std::optional<std::string> publish_narrowing = std::nullopt,
                                                     std::optional<std::string> subscribe_narrowing = std::nullopt);

    [[nodiscard]] bool may_publish(std::string_view name) const;
    [[nodiscard]] bool may_subscribe(std::string_view pattern) const;

    [[nodiscard]] Role role() const { return role_; }
    [[nodiscard]] const std::string& id() const { return id_; }
    [[nodiscard]] const std::vector<std::string>& publish_patterns() const { return publish_; }
    [[nodiscard]] const std::vector<std::string>& subscribe_patterns() const { return subscribe_; }
    [[nodiscard]] const std::optional<std::string>& publish_narrowing() const { return publish_narrowing_; }
    [[nodiscard]] const std::optional<std::string>& subscribe_narrowing() const { return subscribe_narrowing_; }

private:
    Role role_;
    std::string id_;
    std::vector<std::string> publish_;
    std::vector<std::string> subscribe_;
    std::optional<std::string> publish_narrowing_;
    std::optional<std::string> subscribe_narrowing_;
};

}  // namespace aegis::channel
