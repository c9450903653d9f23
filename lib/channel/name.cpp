// Channel names and patterns: validation, matching and pattern containment (DESIGN.md §4).

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "channel/channel.h"

namespace aegis::channel {
namespace {

// Untrusted text echoed in an error is cut to this many bytes so a huge input cannot flood a log.
constexpr std::size_t kMaxEchoedLength = 64;
constexpr std::size_t kMaxIdLength = 64;
constexpr std::string_view kAllowedCharacters = "letters, digits, '_' and '-'";
constexpr std::string_view kReservedId = "all";

enum class Kind { name, pattern };

[[nodiscard]] bool is_token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

[[nodiscard]] bool is_printable_ascii(unsigned char c) {
    return c >= 0x20 && c < 0x7f;
}

// Quotes untrusted text for an error message: control and non-ASCII bytes become \xNN.
[[nodiscard]] std::string printable(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < kMaxEchoedLength; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\' || c == '\'') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (is_printable_ascii(c)) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    if (text.size() > kMaxEchoedLength) out += fmt::format("... ({} bytes)", text.size());
    return out;
}

[[nodiscard]] std::string describe_bad_char(char c, std::size_t offset) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_printable_ascii(byte)) {
        return fmt::format("character '{}' at offset {} is not allowed (tokens use {})", c, offset, kAllowedCharacters);
    }
    return fmt::format("byte 0x{:02x} at offset {} is not allowed (tokens use {})", byte, offset, kAllowedCharacters);
}

// What is wrong with one token starting at `offset`, or nothing.
[[nodiscard]] std::optional<std::string> token_problem(std::string_view token, std::size_t offset, bool last,
                                                       Kind kind) {
    if (token == "*" || token == ">") {
        if (kind == Kind::name) {
            return fmt::format("wildcard '{}' at offset {} is only allowed in patterns", token, offset);
        }
        if (token == ">" && !last) return fmt::format("'>' at offset {} must be the last token", offset);
        return std::nullopt;
    }
    for (std::size_t i = 0; i < token.size(); ++i) {
        const char c = token[i];
        if (is_token_char(c)) continue;
        if (c == '*' || c == '>') {
            return kind == Kind::name
                       ? fmt::format("wildcard '{}' at offset {} is only allowed in patterns", c, offset + i)
                       : fmt::format("wildcard '{}' at offset {} must be a whole token", c, offset + i);
        }
        return describe_bad_char(c, offset + i);
    }
    return std::nullopt;
}

[[nodiscard]] std::optional<std::string> find_problem(std::string_view text, Kind kind) {
    if (text.empty()) return std::string("empty");
    if (text.size() > kMaxNameLength) {
        return fmt::format("{} bytes long, the limit is {}", text.size(), kMaxNameLength);
    }
    if (text.front() == '.') return std::string("starts with '.'");
    if (text.back() == '.') return std::string("ends with '.'");
    std::size_t start = 0;
    while (true) {
        const auto dot = text.find('.', start);
        const bool last = dot == std::string_view::npos;
        const auto token = text.substr(start, last ? std::string_view::npos : dot - start);
        if (token.empty()) return fmt::format("empty token at offset {}", start);
        if (auto problem = token_problem(token, start, last, kind)) return problem;
        if (last) return std::nullopt;
        start = dot + 1;
    }
}

[[nodiscard]] bool is_valid(std::string_view text, Kind kind) {
    return !find_problem(text, kind).has_value();
}

// Walks the tokens of an already validated name or pattern without allocating.
class TokenCursor {
public:
    explicit TokenCursor(std::string_view text) : rest_(text), at_end_(text.empty()) {}

    [[nodiscard]] bool at_end() const { return at_end_; }

    [[nodiscard]] std::string_view take() {
        const auto dot = rest_.find('.');
        if (dot == std::string_view::npos) {
            at_end_ = true;
            return std::exchange(rest_, std::string_view{});
        }
        const auto token = rest_.substr(0, dot);
        rest_.remove_prefix(dot + 1);
        return token;
    }

private:
    std::string_view rest_;
    bool at_end_;
};

// `>` is only ever the last token, so one left-to-right pass decides both questions.
[[nodiscard]] bool covers_valid(std::string_view outer, std::string_view inner) {
    TokenCursor out(outer);
    TokenCursor in(inner);
    while (!out.at_end()) {
        const auto outer_token = out.take();
        // `>` takes one or more of whatever inner has left, wildcards included.
        if (outer_token == ">") return !in.at_end();
        if (in.at_end()) return false;
        const auto inner_token = in.take();
        // Inner `>` reaches names of every length; no finite outer remainder holds them all.
        if (inner_token == ">") return false;
        if (outer_token == "*") continue;
        // A literal holds only itself: not another literal, not inner `*`.
        if (outer_token != inner_token) return false;
    }
    return in.at_end();
}

}  // namespace

Result<void> validate_name(std::string_view name) {
    if (auto problem = find_problem(name, Kind::name)) {
        return make_error(ExitCode::bad_input, "invalid channel name '{}': {}", printable(name), *problem);
    }
    return {};
}

Result<void> validate_pattern(std::string_view pattern) {
    if (auto problem = find_problem(pattern, Kind::pattern)) {
        return make_error(ExitCode::bad_input, "invalid channel pattern '{}': {}", printable(pattern), *problem);
    }
    return {};
}

Result<void> validate_id(std::string_view id) {
    const auto fail = [id](std::string_view problem) {
        return make_error(ExitCode::bad_input, "invalid id '{}': {}", printable(id), problem);
    };
    if (id.empty()) return fail("empty");
    if (id.size() > kMaxIdLength) return fail(fmt::format("{} bytes long, the limit is {}", id.size(), kMaxIdLength));
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (!is_token_char(id[i])) {
            if (id[i] == '.') return fail(fmt::format("'.' at offset {}: an id is a single token", i));
            return fail(describe_bad_char(id[i], i));
        }
    }
    if (id == kReservedId) return fail("'all' is reserved for broadcasts (backend.all.>)");
    return {};
}

bool matches(std::string_view pattern, std::string_view name) {
    // A name is a pattern that matches only itself, so matching is containment of that one name.
    return is_valid(pattern, Kind::pattern) && is_valid(name, Kind::name) && covers_valid(pattern, name);
}

bool covers(std::string_view outer, std::string_view inner) {
    return is_valid(outer, Kind::pattern) && is_valid(inner, Kind::pattern) && covers_valid(outer, inner);
}

}  // namespace aegis::channel
