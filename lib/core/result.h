#pragma once
// Errors as values: the library returns Result<T>; only a tool's main turns an Error into
// a line on stderr and an exit code.

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "core/exit_code.h"

namespace aegis {

struct Error {
    ExitCode exit = ExitCode::failure;
    std::string message;
    // A protocol-level reason (protocol::Reason), 0 when the error did not come from the wire.
    std::uint16_t reason = 0;
};

template <typename... Args>
[[nodiscard]] Error make_error(ExitCode exit, fmt::format_string<Args...> format, Args&&... args) {
    return Error{exit, fmt::format(format, std::forward<Args>(args)...), 0};
}

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(state_); }
    Error&& take_error() { return std::get<1>(std::move(state_)); }

private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }
    Error&& take_error() { return std::move(error_); }

private:
    Error error_;
    bool ok_ = true;
};

}  // namespace aegis
