#include "channel/channel.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "channel/pattern_index.h"

using namespace aegis;
using channel::AccessPolicy;

namespace {

struct Invalid {
    std::string text;
    std::string why;  // a piece of the expected error message
};

struct MatchCase {
    std::string_view pattern;
    std::string_view name;
    bool expected;
};

// A name of exactly `length` bytes: tokens of nine letters joined by dots.
std::string name_of_length(std::size_t length) {
    std::string out;
    while (out.size() < length) out += (out.size() % 10 == 9) ? '.' : 'a';
    if (out.back() == '.') out.back() = 'b';
    return out;
}

std::string join(const std::vector<std::string>& tokens) {
    std::string out;
    for (const auto& token : tokens) {
        if (!out.empty()) out += '.';
        out += token;
    }
    return out;
}

// Every dot-joined sequence of 1..max_tokens tokens; `last_only` tokens appear only in last place.
std::vector<std::string> enumerate(const std::vector<std::string>& tokens, const std::vector<std::string>& last_only,
                                   std::size_t max_tokens) {
    std::vector<std::string> out;
    std::vector<std::vector<std::string>> prefixes{{}};
    for (std::size_t length = 1; length <= max_tokens; ++length) {
        std::vector<std::vector<std::string>> longer;
        for (const auto& prefix : prefixes) {
            for (const auto& token : tokens) {
                auto next = prefix;
                next.push_back(token);
                out.push_back(join(next));
                longer.push_back(std::move(next));
            }
            for (const auto& token : last_only) {
                auto last = prefix;
                last.push_back(token);
                out.push_back(join(last));
            }
        }
        prefixes = std::move(longer);
    }
    return out;
}

// An independent matcher to check matches() against: the pattern as a regular expression.
std::regex to_regex(const std::string& pattern) {
    const std::string token = "[A-Za-z0-9_-]+";
    std::string expression;
    std::size_t start = 0;
    while (true) {
        const auto dot = pattern.find('.', start);
        const auto part = pattern.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!expression.empty()) expression += "\\.";
        if (part == "*") {
            expression += token;
        } else if (part == ">") {
            expression += token + "(\\." + token + ")*";
        } else {
            expression += part;
        }
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return std::regex(expression);
}

bool regex_matches(const std::string& pattern, const std::string& name) {
    return std::regex_match(name, to_regex(pattern));
}

// For each pattern, the set of names it matches (names indexed as in `names`).
std::vector<std::vector<bool>> match_table(const std::vector<std::string>& patterns,
                                           const std::vector<std::string>& names) {
    std::vector<std::vector<bool>> table;
    for (const auto& pattern : patterns) {
        std::vector<bool> row;
        for (const auto& name : names) row.push_back(channel::matches(pattern, name));
        table.push_back(std::move(row));
    }
    return table;
}

bool subset(const std::vector<bool>& inner, const std::vector<bool>& outer) {
    for (std::size_t i = 0; i < inner.size(); ++i) {
        if (inner[i] && !outer[i]) return false;
    }
    return true;
}

bool has_control_bytes(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte >= 0x7f;
    });
}

}  // namespace

TEST_CASE("valid channel names", "[channel]") {
    const std::vector<std::string> valid{
        "a",
        "Z",
        "0",
        "_",
        "-",
        "agent.host42.policies",
        "backend.all.policies",
        "A-b_c.9.x-y_Z",
        "a.b.c.d.e.f.g.h.i.j.k",
        "agent.-.x",
        std::string(channel::kMaxNameLength, 'a'),
        name_of_length(channel::kMaxNameLength),
    };
    for (const auto& name : valid) {
        CAPTURE(name);
        CHECK(channel::validate_name(name).ok());
        // Every name is also a pattern, one that matches only itself.
        CHECK(channel::validate_pattern(name).ok());
        CHECK(channel::matches(name, name));
    }
    CHECK(name_of_length(channel::kMaxNameLength).size() == 255);
}

TEST_CASE("invalid channel names say what is wrong", "[channel]") {
    using namespace std::string_literals;
    const std::vector<Invalid> invalid{
        {"", "empty"},
        {".", "starts with '.'"},
        {"..", "starts with '.'"},
        {".a", "starts with '.'"},
        {"a.", "ends with '.'"},
        {"a..b", "empty token at offset 2"},
        {"a...b", "empty token at offset 2"},
        {"*", "wildcard '*' at offset 0 is only allowed in patterns"},
        {">", "wildcard '>' at offset 0 is only allowed in patterns"},
        {"a.*", "wildcard '*' at offset 2 is only allowed in patterns"},
        {"a.>", "wildcard '>' at offset 2 is only allowed in patterns"},
        {"a*", "wildcard '*' at offset 1 is only allowed in patterns"},
        {"a.b>", "wildcard '>' at offset 3 is only allowed in patterns"},
        {"a b", "character ' ' at offset 1 is not allowed"},
        {" a", "character ' ' at offset 0"},
        {"a ", "character ' ' at offset 1"},
        {"a/b", "character '/' at offset 1"},
        {"a:b", "character ':' at offset 1"},
        {"a+b", "character '+' at offset 1"},
        {"a,b", "character ',' at offset 1"},
        {"a\nb", "byte 0x0a at offset 1 is not allowed"},
        {"a\tb", "byte 0x09 at offset 1"},
        {"a\x1b[31mb", "byte 0x1b at offset 1"},
        {"a\x7f", "byte 0x7f at offset 1"},
        {"a\0b"s, "byte 0x00 at offset 1"},
        {"caf\xc3\xa9", "byte 0xc3 at offset 3"},           // é in UTF-8
        {"agent.\xe4\xb8\xad.x", "byte 0xe4 at offset 6"},  // CJK in UTF-8
        {"\xef\xbc\x8e", "byte 0xef at offset 0"},          // fullwidth full stop
        {std::string(channel::kMaxNameLength + 1, 'a'), "256 bytes long, the limit is 255"},
        {name_of_length(channel::kMaxNameLength + 1), "256 bytes long"},
    };
    for (const auto& [name, why] : invalid) {
        CAPTURE(name, why);
        const auto result = channel::validate_name(name);
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().exit == ExitCode::bad_input);
        CHECK(result.error().message.rfind("invalid channel name '", 0) == 0);
        CHECK_THAT(result.error().message, Catch::Contains(why));
        // Never echo raw control or non-ASCII bytes into a log line or terminal.
        CHECK_FALSE(has_control_bytes(result.error().message));
        CHECK_FALSE(channel::matches(name, name));
        CHECK_FALSE(channel::matches(">", name));
    }
}

TEST_CASE("error messages echo the input safely and briefly", "[channel]") {
    using namespace std::string_literals;
    CHECK(channel::validate_name("a..b").error().message == "invalid channel name 'a..b': empty token at offset 2");
    CHECK(channel::validate_name("a\nb").error().message ==
          "invalid channel name 'a\\x0ab': byte 0x0a at offset 1 is not allowed (tokens use letters, digits, '_' "
          "and '-')");
    CHECK_THAT(channel::validate_name("a'b").error().message, Catch::StartsWith("invalid channel name 'a\\'b'"));
    CHECK_THAT(channel::validate_name("a\\b").error().message, Catch::StartsWith("invalid channel name 'a\\\\b'"));
    CHECK_THAT(channel::validate_name("x\0"s).error().message, Catch::StartsWith("invalid channel name 'x\\x00'"));

    const std::string huge(100000, '\x01');
    const auto message = channel::validate_name(huge).error().message;
    CHECK(message.size() < 400);
    CHECK_THAT(message, Catch::Contains("... (100000 bytes)"));
    CHECK_THAT(message, Catch::Contains("100000 bytes long, the limit is 255"));
    CHECK_FALSE(has_control_bytes(message));

    const auto pattern_message = channel::validate_pattern(std::string(300, 'q')).error().message;
    const auto echoed = "invalid channel pattern '" + std::string(64, 'q') + "... (300 bytes)'";
    CHECK_THAT(pattern_message, Catch::StartsWith(echoed));
}

TEST_CASE("valid channel patterns", "[channel]") {
    const std::string long_pattern = name_of_length(channel::kMaxNameLength - 2) + ".>";
    const std::vector<std::string> valid{
        "*",          ">",     "a.*",   "a.>",     "*.*",           "*.>",
        "*.*.>",      "a.*.b", "a.b.c", "agent.>", "backend.all.>", "agent.*.anomalies",
        long_pattern,
    };
    for (const auto& pattern : valid) {
        CAPTURE(pattern);
        CHECK(channel::validate_pattern(pattern).ok());
        CHECK(channel::covers(pattern, pattern));
    }
    CHECK(long_pattern.size() == channel::kMaxNameLength);
}

TEST_CASE("invalid channel patterns say what is wrong", "[channel]") {
    const std::vector<Invalid> invalid{
        {"", "empty"},
        {".", "starts with '.'"},
        {".>", "starts with '.'"},
        {"a.", "ends with '.'"},
        {"a..>", "empty token at offset 2"},
        {"a.>.b", "'>' at offset 2 must be the last token"},
        {">.a", "'>' at offset 0 must be the last token"},
        {">.>", "'>' at offset 0 must be the last token"},
        {"a>", "wildcard '>' at offset 1 must be a whole token"},
        {"a*", "wildcard '*' at offset 1 must be a whole token"},
        {"*a", "wildcard '*' at offset 0 must be a whole token"},
        {"a.**", "wildcard '*' at offset 2 must be a whole token"},
        {"a.>>", "wildcard '>' at offset 2 must be a whole token"},
        {"a.*>", "wildcard '*' at offset 2 must be a whole token"},
        {"a.#", "character '#' at offset 2"},
        {"a.?", "character '?' at offset 2"},
        {"a. *", "character ' ' at offset 2"},
        {"a.\r", "byte 0x0d at offset 2"},
        {"\xc3\xa9.>", "byte 0xc3 at offset 0"},
        {std::string(channel::kMaxNameLength, 'a') + ".>", "257 bytes long"},
        {name_of_length(channel::kMaxNameLength - 1) + ".>", "256 bytes long"},
    };
    for (const auto& [pattern, why] : invalid) {
        CAPTURE(pattern, why);
        const auto result = channel::validate_pattern(pattern);
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().exit == ExitCode::bad_input);
        CHECK(result.error().message.rfind("invalid channel pattern '", 0) == 0);
        CHECK_THAT(result.error().message, Catch::Contains(why));
        CHECK_FALSE(has_control_bytes(result.error().message));
        // Invalid input fails closed in both directions.
        CHECK_FALSE(channel::covers(">", pattern));
        CHECK_FALSE(channel::covers(pattern, pattern));
        CHECK_FALSE(channel::matches(pattern, "a"));
    }
}

TEST_CASE("ids are one token and not the broadcast word", "[channel]") {
    const std::vector<std::string> valid{"host42", "a",   "A-b_9",     std::string(64, 'x'),
                                         "All",    "ALL", "all-hosts", "_all"};
    for (const auto& id : valid) {
        CAPTURE(id);
        CHECK(channel::validate_id(id).ok());
    }
    const std::vector<Invalid> invalid{
        {"all", "reserved for broadcasts"},
        {"", "empty"},
        {std::string(65, 'x'), "65 bytes long, the limit is 64"},
        {"host.42", "'.' at offset 4: an id is a single token"},
        {".", "'.' at offset 0"},
        {"*", "character '*' at offset 0"},
        {">", "character '>' at offset 0"},
        {"h*", "character '*' at offset 1"},
        {"host 42", "character ' ' at offset 4"},
        {"host\n", "byte 0x0a at offset 4"},
        {"h\xc3\xb6st", "byte 0xc3 at offset 1"},
    };
    for (const auto& [id, why] : invalid) {
        CAPTURE(id, why);
        const auto result = channel::validate_id(id);
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().exit == ExitCode::bad_input);
        CHECK(result.error().message.rfind("invalid id '", 0) == 0);
        CHECK_THAT(result.error().message, Catch::Contains(why));
        CHECK_FALSE(has_control_bytes(result.error().message));
    }
}

TEST_CASE("the seed's well-known channels validate", "[channel]") {
    for (const std::string topic : {"policies", "anomalies", "threats", "processes", "dependencies", "tests",
                                    "rollbacks", "heartbeat", "status", "logs"}) {
        const auto name = "agent.host42." + topic;
        CAPTURE(name);
        CHECK(channel::validate_name(name).ok());
        CHECK(channel::validate_pattern("agent.*." + topic).ok());
        CHECK(channel::matches("agent.*." + topic, name));
        CHECK(AccessPolicy(Role::agent, "host42").may_publish(name));
        CHECK(AccessPolicy(Role::backend, "core").may_subscribe("agent.*." + topic));
    }
    for (const std::string topic : {"policies", "investigations", "threats", "processes", "tests", "rollbacks"}) {
        for (const std::string target : {"host42", "all"}) {
            const auto name = "backend." + target + "." + topic;
            CAPTURE(name);
            CHECK(channel::validate_name(name).ok());
            CHECK(AccessPolicy(Role::backend, "core").may_publish(name));
            CHECK(AccessPolicy(Role::agent, "host42").may_subscribe(name));
        }
    }
}

TEST_CASE("matches follows NATS semantics", "[channel]") {
    const std::vector<MatchCase> cases{
        {"a", "a", true},
        {"a", "b", false},
        {"a", "a.b", false},
        {"a.b", "a", false},
        {"a.b", "a.b", true},
        {"a.b", "a.B", false},  // case-sensitive
        {"*", "a", true},
        {"*", "a.b", false},
        {"a.*", "a", false},
        {"a.*", "a.b", true},
        {"a.*", "a.b.c", false},
        {"*.b", "a.b", true},
        {"*.b", "a.c", false},
        {"a.*.c", "a.b.c", true},
        {"a.*.c", "a.b.d", false},
        {"a.*.c", "a.c", false},
        {">", "a", true},
        {">", "a.b.c.d", true},
        {"a.>", "a", false},
        {"a.>", "a.b", true},
        {"a.>", "a.b.c", true},
        {"a.>", "b.a", false},
        {"a.>", "ab.c", false},  // tokens, not string prefixes
        {"ab.>", "a.b", false},
        {"*.>", "a", false},
        {"*.>", "a.b", true},
        {"*.*.>", "a.b", false},
        {"*.*.>", "a.b.c", true},
        {"agent.*.anomalies", "agent.host42.anomalies", true},
        {"agent.*.anomalies", "agent.host42.threats", false},
        {"agent.*.anomalies", "agent.host42.anomalies.extra", false},
        {"backend.all.>", "backend.all.policies", true},
        {"backend.all.>", "backend.host42.policies", false},
        // A wildcard in the name position is not a valid name, so nothing matches it.
        {"a.*", "a.*", false},
        {"a.>", "a.>", false},
        {">", "a..b", false},
        {">", "", false},
        {"", "", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.pattern, c.name);
        CHECK(channel::matches(c.pattern, c.name) == c.expected);
    }
}

TEST_CASE("covers is pattern containment", "[channel]") {
    const std::vector<MatchCase> cases{
        // {outer, inner, expected}
        {">", ">", true},
        {">", "*", true},
        {">", "a.b.c", true},
        {">", "*.>", true},
        {"a.>", "a.>", true},
        {"a.>", "a.*", true},
        {"a.>", "a.*.>", true},
        {"a.>", "a.b", true},
        {"a.>", "a", false},
        {"a.>", ">", false},
        {"a.>", "*.b", false},
        {"a.>", "*.>", false},
        {"*.>", ">", false},  // inner matches one-token names
        {"*.>", "a.>", true},
        {"*.>", "*.*", true},
        {"*", "a", true},
        {"*", "*", true},
        {"*", ">", false},
        {"*", "a.b", false},
        {"a", "*", false},
        {"a", "a", true},
        {"a", "b", false},
        {"a.*", "a.>", false},
        {"a.*", "a.b", true},
        {"a.*", "a.*", true},
        {"a.*", "a.b.c", false},
        {"*.*", "a.>", false},
        {"*.b", "a.b", true},
        {"*.b", "a.*", false},
        {"a.*.c", "a.b.c", true},
        {"a.*.c", "a.*.*", false},
        {"a.*.>", "a.b.>", true},
        {"a.*.>", "a.>", false},
        {"a.b", "a.b.c", false},
        {"a.b.c", "a.b", false},
        {"backend.host42.>", "backend.*.policies", false},
        {"backend.host42.>", "backend.host42.policies", true},
        {"agent.>", "agent.*.anomalies", true},
        {"agent.>", ">", false},
        {"agent.host42.>", "agent.>", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.pattern, c.name);
        CHECK(channel::covers(c.pattern, c.name) == c.expected);
    }
}

TEST_CASE("matches agrees with a regular-expression matcher on every small case", "[channel]") {
    // Patterns of up to 4 tokens, names of up to 5: long enough that `>` reaches past the pattern.
    const auto patterns = enumerate({"a", "b", "*"}, {">"}, 4);
    const auto names = enumerate({"a", "b"}, {}, 5);
    REQUIRE(patterns.size() == 4 + 12 + 36 + 108);
    REQUIRE(names.size() == 2 + 4 + 8 + 16 + 32);
    std::size_t disagreements = 0;
    for (const auto& pattern : patterns) {
        REQUIRE(channel::validate_pattern(pattern).ok());
        for (const auto& name : names) {
            if (channel::matches(pattern, name) != regex_matches(pattern, name)) {
                ++disagreements;
                UNSCOPED_INFO("pattern " << pattern << " name " << name);
            }
        }
    }
    CHECK(disagreements == 0);
}

TEST_CASE("covers agrees with brute force over every small pair of patterns", "[channel]") {
    // Sound because: two letters always give a name token that differs from any one literal, and a
    // name matched by inner but not outer can be cut to (longest pattern + 1) tokens and still be one.
    const auto patterns = enumerate({"a", "b", "*"}, {">"}, 4);
    const auto names = enumerate({"a", "b"}, {}, 5);
    const auto table = match_table(patterns, names);
    std::size_t covered = 0;
    std::size_t disagreements = 0;
    for (std::size_t outer = 0; outer < patterns.size(); ++outer) {
        for (std::size_t inner = 0; inner < patterns.size(); ++inner) {
            const bool expected = subset(table[inner], table[outer]);
            covered += expected ? 1 : 0;
            if (channel::covers(patterns[outer], patterns[inner]) != expected) {
                ++disagreements;
                UNSCOPED_INFO("outer " << patterns[outer] << " inner " << patterns[inner] << " expected " << expected);
            }
        }
    }
    CHECK(disagreements == 0);
    // Guard against a vacuous check: both answers occur plenty of times.
    CHECK(covered > patterns.size());
    CHECK(covered < patterns.size() * patterns.size() / 2);
}

TEST_CASE("an agent publishes only its own channels", "[channel]") {
    const AccessPolicy policy(Role::agent, "host42");
    CHECK(policy.role() == Role::agent);
    CHECK(policy.id() == "host42");
    CHECK(policy.publish_patterns() == std::vector<std::string>{"agent.host42.>"});
    CHECK(policy.subscribe_patterns() == std::vector<std::string>{"backend.host42.>", "backend.all.>"});

    const std::vector<std::pair<std::string_view, bool>> publish{
        {"agent.host42.policies", true},
        {"agent.host42.heartbeat", true},
        {"agent.host42.logs.kernel", true},
        {"agent.host42", false},
        {"agent.host43.policies", false},
        {"agent.host4.policies", false},
        {"agent.host420.policies", false},
        {"agent.all.policies", false},
        {"backend.host42.policies", false},
        {"backend.all.policies", false},
        {"host42", false},
        {"agent.*.policies", false},  // not a name
        {"agent.host42.>", false},    // not a name
        {"agent.host42..x", false},
        {"agent.host42.x ", false},
    };
    for (const auto& [name, expected] : publish) {
        CAPTURE(name);
        CHECK(policy.may_publish(name) == expected);
    }

    const std::vector<std::pair<std::string_view, bool>> subscribe{
        {"backend.host42.policies", true},
        {"backend.host42.*", true},
        {"backend.host42.>", true},
        {"backend.host42.*.x", true},
        {"backend.all.>", true},
        {"backend.all.policies", true},
        {"backend.all.*", true},
        {"backend.*.policies", false},
        {"backend.>", false},
        {"backend.*.>", false},
        {"backend.host43.policies", false},
        {"backend.host42", false},
        {"agent.>", false},
        {"agent.host42.>", false},
        {"agent.*.anomalies", false},
        {">", false},
        {"*.host42.policies", false},
        {"backend.host42.>.x", false},  // invalid pattern
        {"", false},
    };
    for (const auto& [pattern, expected] : subscribe) {
        CAPTURE(pattern);
        CHECK(policy.may_subscribe(pattern) == expected);
    }
}

TEST_CASE("a backend publishes to backends' channels and subscribes to agents'", "[channel]") {
    const AccessPolicy policy(Role::backend, "core");
    CHECK(policy.publish_patterns() == std::vector<std::string>{"backend.>"});
    CHECK(policy.subscribe_patterns() == std::vector<std::string>{"agent.>"});

    const std::vector<std::pair<std::string_view, bool>> publish{
        {"backend.host42.policies", true},
        {"backend.all.policies", true},
        {"backend.core.investigations", true},
        {"backend.x", true},
        {"backend", false},
        {"agent.x.y", false},
        {"agent.host42.policies", false},
        {"backends.x.y", false},
        {"backend.*.policies", false},
    };
    for (const auto& [name, expected] : publish) {
        CAPTURE(name);
        CHECK(policy.may_publish(name) == expected);
    }

    const std::vector<std::pair<std::string_view, bool>> subscribe{
        {"agent.*.anomalies", true},
        {"agent.>", true},
        {"agent.host42.>", true},
        {"agent.host42.heartbeat", true},
        {"agent.*", true},
        {"agent", false},
        {">", false},
        {"*.host42.anomalies", false},
        {"backend.>", false},
        {"backend.all.policies", false},
    };
    for (const auto& [pattern, expected] : subscribe) {
        CAPTURE(pattern);
        CHECK(policy.may_subscribe(pattern) == expected);
    }
}

TEST_CASE("narrowing restricts the defaults and never widens them", "[channel]") {
    SECTION("agent narrowed to a few topics") {
        const AccessPolicy policy(Role::agent, "host42", "agent.host42.heartbeat", "backend.*.policies");
        CHECK(policy.publish_narrowing() == std::optional<std::string>("agent.host42.heartbeat"));
        CHECK(policy.may_publish("agent.host42.heartbeat"));
        CHECK_FALSE(policy.may_publish("agent.host42.logs"));
        CHECK(policy.may_subscribe("backend.host42.policies"));
        CHECK(policy.may_subscribe("backend.all.policies"));
        CHECK_FALSE(policy.may_subscribe("backend.host42.threats"));
        CHECK_FALSE(policy.may_subscribe("backend.all.>"));
        // Within the narrowing but outside the defaults.
        CHECK_FALSE(policy.may_subscribe("backend.*.policies"));
        CHECK_FALSE(policy.may_subscribe("backend.host43.policies"));
    }
    SECTION("a narrowing wider than the defaults grants nothing extra") {
        const AccessPolicy policy(Role::agent, "host42", ">", ">");
        CHECK(policy.may_publish("agent.host42.logs"));
        CHECK_FALSE(policy.may_publish("agent.host43.logs"));
        CHECK_FALSE(policy.may_publish("backend.all.x"));
        CHECK(policy.may_subscribe("backend.all.>"));
        CHECK_FALSE(policy.may_subscribe("backend.>"));
        CHECK_FALSE(policy.may_subscribe(">"));
    }
    SECTION("backend narrowed to one agent and broadcasts") {
        const AccessPolicy policy(Role::backend, "core", "backend.all.>", "agent.host42.>");
        CHECK(policy.may_publish("backend.all.policies"));
        CHECK_FALSE(policy.may_publish("backend.host42.policies"));
        CHECK(policy.may_subscribe("agent.host42.anomalies"));
        CHECK(policy.may_subscribe("agent.host42.*"));
        CHECK_FALSE(policy.may_subscribe("agent.*.anomalies"));
        CHECK_FALSE(policy.may_subscribe("agent.>"));
        CHECK_FALSE(policy.may_subscribe("agent.host43.anomalies"));
    }
    SECTION("a narrowing outside the defaults leaves nothing") {
        const AccessPolicy policy(Role::backend, "core", "agent.>", "backend.>");
        CHECK_FALSE(policy.may_publish("agent.x.y"));
        CHECK_FALSE(policy.may_publish("backend.x.y"));
        CHECK_FALSE(policy.may_subscribe("backend.x.y"));
        CHECK_FALSE(policy.may_subscribe("agent.x.y"));
    }
    SECTION("only the narrowed direction changes") {
        const AccessPolicy policy(Role::agent, "host42", std::nullopt, "backend.all.>");
        CHECK(policy.may_publish("agent.host42.logs"));
        CHECK_FALSE(policy.may_subscribe("backend.host42.policies"));
        CHECK(policy.may_subscribe("backend.all.policies"));
    }
}

TEST_CASE("access policies fail closed on bad ids and narrowings", "[channel]") {
    // An id that is itself a wildcard must not turn agent.<id>.> into every agent's channels.
    for (const std::string id : {"*", ">", "a.b", "all", "", "host 42"}) {
        CAPTURE(id);
        const AccessPolicy policy(Role::agent, id);
        CHECK(policy.publish_patterns().empty());
        CHECK(policy.subscribe_patterns().empty());
        CHECK_FALSE(policy.may_publish("agent.host42.logs"));
        CHECK_FALSE(policy.may_publish("agent." + id + ".logs"));
        CHECK_FALSE(policy.may_subscribe("backend.all.policies"));
        const auto created = AccessPolicy::create(Role::agent, id);
        REQUIRE_FALSE(created.ok());
        CHECK(created.error().exit == ExitCode::bad_input);
        CHECK_THAT(created.error().message, Catch::StartsWith("invalid id '"));
    }

    const AccessPolicy bad_narrowing(Role::backend, "core", "backend.>.x", "agent..x");
    CHECK_FALSE(bad_narrowing.may_publish("backend.a.x"));
    CHECK_FALSE(bad_narrowing.may_subscribe("agent.a.x"));

    const auto bad_publish = AccessPolicy::create(Role::backend, "core", std::string("backend.>.x"));
    REQUIRE_FALSE(bad_publish.ok());
    CHECK(bad_publish.error().message ==
          "invalid channel pattern 'backend.>.x': '>' at offset 8 must be the last token");
    const auto bad_subscribe = AccessPolicy::create(Role::backend, "core", std::nullopt, std::string("agent..x"));
    REQUIRE_FALSE(bad_subscribe.ok());
    CHECK_THAT(bad_subscribe.error().message, Catch::Contains("empty token at offset 6"));

    const auto good = AccessPolicy::create(Role::agent, "host42", std::nullopt, std::string("backend.all.>"));
    REQUIRE(good.ok());
    CHECK(good->id() == "host42");
    CHECK(good->may_subscribe("backend.all.policies"));
    CHECK_FALSE(good->may_subscribe("backend.host42.policies"));
}

TEST_CASE("access policies agree with brute force over small channels", "[channel]") {
    // Names from the ACL vocabulary plus "x", a token no pattern mentions, up to one token longer
    // than any pattern here; the expected answer is computed from sets of matched names alone.
    const std::vector<std::string> vocabulary{"agent", "backend", "all", "host42"};
    auto name_tokens = vocabulary;
    name_tokens.emplace_back("x");
    auto pattern_tokens = vocabulary;
    pattern_tokens.emplace_back("*");
    const auto names = enumerate(name_tokens, {}, 5);
    const auto patterns = enumerate(pattern_tokens, {">"}, 4);

    struct Setup {
        Role role;
        std::optional<std::string> publish_narrowing;
        std::optional<std::string> subscribe_narrowing;
    };
    const std::vector<Setup> setups{
        {Role::agent, std::nullopt, std::nullopt},          {Role::agent, "agent.host42.*", "backend.*.all"},
        {Role::agent, "*.host42.agent.>", "backend.all.>"}, {Role::backend, std::nullopt, std::nullopt},
        {Role::backend, "backend.all.>", "agent.*.host42"}, {Role::backend, "*.host42.>", "agent.host42.>"},
    };
    const auto patterns_table = match_table(patterns, names);
    for (const auto& setup : setups) {
        CAPTURE(to_string(setup.role), setup.publish_narrowing.value_or("-"), setup.subscribe_narrowing.value_or("-"));
        const AccessPolicy policy(setup.role, "host42", setup.publish_narrowing, setup.subscribe_narrowing);

        // The names this identity may see in each direction: the defaults cut by the narrowing.
        const auto allowed = [&](const std::vector<std::string>& defaults,
                                 const std::optional<std::string>& narrowing) {
            std::vector<std::regex> default_expressions;
            for (const auto& pattern : defaults) default_expressions.push_back(to_regex(pattern));
            const auto narrowing_expression = to_regex(narrowing.value_or(">"));
            std::vector<bool> row(names.size(), false);
            for (std::size_t i = 0; i < names.size(); ++i) {
                const bool in_defaults =
                    std::any_of(default_expressions.begin(), default_expressions.end(),
                                [&](const std::regex& expression) { return std::regex_match(names[i], expression); });
                row[i] = in_defaults && std::regex_match(names[i], narrowing_expression);
            }
            return row;
        };
        const auto publishable = allowed(policy.publish_patterns(), setup.publish_narrowing);
        const auto subscribable = allowed(policy.subscribe_patterns(), setup.subscribe_narrowing);

        std::size_t publish_disagreements = 0;
        std::size_t publish_allowed = 0;
        for (std::size_t i = 0; i < names.size(); ++i) {
            publish_allowed += publishable[i] ? 1 : 0;
            if (policy.may_publish(names[i]) != publishable[i]) {
                ++publish_disagreements;
                UNSCOPED_INFO("publish " << names[i]);
            }
        }
        std::size_t subscribe_disagreements = 0;
        std::size_t subscribe_allowed = 0;
        for (std::size_t p = 0; p < patterns.size(); ++p) {
            const bool expected = subset(patterns_table[p], subscribable);
            subscribe_allowed += expected ? 1 : 0;
            if (policy.may_subscribe(patterns[p]) != expected) {
                ++subscribe_disagreements;
                UNSCOPED_INFO("subscribe " << patterns[p] << " expected " << expected);
            }
        }
        CHECK(publish_disagreements == 0);
        CHECK(subscribe_disagreements == 0);
        CHECK(publish_allowed > 0);
        CHECK(subscribe_allowed > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// The routing index

TEST_CASE("pattern index: the candidates for a channel include every key with a matching pattern", "[channel]") {
    // Every pattern and name of up to three tokens over a small alphabet, so literal, `*` and `>`
    // meet in every position; each key holds two patterns.
    const std::vector<std::string> tokens{"a", "b", "*", ">"};
    std::vector<std::string> patterns;
    for (const auto& t1 : tokens) {
        patterns.push_back(t1);
        for (const auto& t2 : tokens) {
            patterns.push_back(t1 + "." + t2);
            for (const auto& t3 : tokens) patterns.push_back(t1 + "." + t2 + "." + t3);
        }
    }
    std::erase_if(patterns, [](const std::string& p) { return !channel::validate_pattern(p).ok(); });
    std::vector<std::string> names;
    for (const auto& p : patterns)
        if (channel::validate_name(p).ok()) names.push_back(p);
    REQUIRE(names.size() == 2 + 4 + 8);

    channel::PatternIndex<int> index;
    std::vector<std::vector<std::string>> held;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        held.push_back({patterns[i], patterns[(i * 7 + 3) % patterns.size()]});
        index.set(static_cast<int>(i), held.back());
    }
    std::size_t candidates_total = 0;
    for (const auto& name : names) {
        const auto candidates = index.candidates(name);
        candidates_total += candidates.size();
        CHECK(std::is_sorted(candidates.begin(), candidates.end()));
        CHECK(std::adjacent_find(candidates.begin(), candidates.end()) == candidates.end());
        for (std::size_t key = 0; key < held.size(); ++key) {
            const bool match = std::any_of(held[key].begin(), held[key].end(),
                                           [&](const std::string& p) { return channel::matches(p, name); });
            if (match) {
                INFO(name << " is matched by " << held[key][0] << " or " << held[key][1]);
                CHECK(std::binary_search(candidates.begin(), candidates.end(), static_cast<int>(key)));
            }
        }
    }
    CHECK(candidates_total < held.size() * names.size());  // not every key for every name
}

TEST_CASE("pattern index: in a fleet a message to one agent has one candidate, not every agent", "[channel]") {
    channel::PatternIndex<int> index;
    for (int agent = 0; agent < 1000; ++agent)
        index.set(agent, {"backend.host" + std::to_string(agent) + ".>", "backend.all.>"});
    index.set(1000, {"agent.>"});
    index.set(1001, {"agent.*.heartbeat"});
    CHECK(index.candidates("backend.host7.policy") == std::vector<int>{7});
    CHECK(index.candidates("agent.host7.heartbeat") == std::vector<int>{1000, 1001});
    CHECK(index.candidates("backend.all.notice").size() == 1000);
}

TEST_CASE("pattern index: a key's patterns are replaced and erased", "[channel]") {
    channel::PatternIndex<int> index;
    index.set(1, {"backend.host42.>", "backend.all.>"});
    index.set(2, {"agent.>"});
    index.set(3, {"backend.host43.>"});
    CHECK(index.candidates("backend.host42.policy") == std::vector<int>{1});
    CHECK(index.candidates("backend.all.notice") == std::vector<int>{1});
    CHECK(index.candidates("agent.host42.heartbeat") == std::vector<int>{2});
    CHECK(index.candidates("audit").empty());
    index.set(1, {"backend.host44.>"});
    CHECK(index.candidates("backend.host42.policy").empty());
    CHECK(index.candidates("backend.host44.x") == std::vector<int>{1});
    index.set(4, {">"});
    CHECK(index.candidates("audit") == std::vector<int>{4});
    index.erase(2);
    CHECK(index.candidates("agent.host42.heartbeat") == std::vector<int>{4});
    index.clear();
    CHECK(index.candidates("agent.host42.heartbeat").empty());
}
