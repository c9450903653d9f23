#pragma once
// Secret key material: never copied, wiped when destroyed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace aegis::crypto {

// Overwrites memory in a way the compiler cannot elide (sodium_memzero).
void secure_wipe(void* data, std::size_t size);

template <std::size_t N>
class Secret {
public:
    Secret() = default;
    explicit Secret(std::span<const std::uint8_t, N> bytes) {
        for (std::size_t i = 0; i < N; ++i) bytes_[i] = bytes[i];
    }
    ~Secret() { secure_wipe(bytes_.data(), N); }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&& other) noexcept : bytes_(other.bytes_) { secure_wipe(other.bytes_.data(), N); }
    Secret& operator=(Secret&& other) noexcept {
        if (this != &other) {
            bytes_ = other.bytes_;
            secure_wipe(other.bytes_.data(), N);
        }
        return *this;
    }

    [[nodiscard]] std::uint8_t* data() { return bytes_.data(); }
    [[nodiscard]] const std::uint8_t* data() const { return bytes_.data(); }
    [[nodiscard]] static constexpr std::size_t size() { return N; }
    [[nodiscard]] std::span<const std::uint8_t, N> view() const { return std::span<const std::uint8_t, N>(bytes_); }
    [[nodiscard]] std::span<std::uint8_t, N> mutable_view() { return std::span<std::uint8_t, N>(bytes_); }

private:
    std::array<std::uint8_t, N> bytes_{};
};

using SymmetricKey = Secret<32>;

}  // namespace aegis::crypto
