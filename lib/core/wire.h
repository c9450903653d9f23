#pragma once
// The fixed binary layout of PROTOCOL.md: big-endian integers and length-prefixed fields.
// WireReader never reads past its input; every get_* returns false once the input is short.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bytes.h"

namespace aegis {

class WireWriter {
public:
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { put_be(v, 2); }
    void u32(std::uint32_t v) { put_be(v, 4); }
    void u64(std::uint64_t v) { put_be(v, 8); }
    void raw(ByteView bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }
    template <std::size_t N>
    void raw(const std::array<std::uint8_t, N>& bytes) {
        raw(ByteView(bytes));
    }
    // Length-prefixed fields; the caller guarantees the length fits the prefix.
    void bytes8(ByteView b) {
        u8(static_cast<std::uint8_t>(b.size()));
        raw(b);
    }
    void bytes16(ByteView b) {
        u16(static_cast<std::uint16_t>(b.size()));
        raw(b);
    }
    void bytes32(ByteView b) {
        u32(static_cast<std::uint32_t>(b.size()));
        raw(b);
    }
    void text8(std::string_view s) { bytes8(as_bytes(s)); }
    void text16(std::string_view s) { bytes16(as_bytes(s)); }

    [[nodiscard]] const Bytes& bytes() const { return out_; }
    [[nodiscard]] Bytes take() { return std::move(out_); }
    [[nodiscard]] std::size_t size() const { return out_.size(); }

private:
    void put_be(std::uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    Bytes out_;
};

class WireReader {
public:
    explicit WireReader(ByteView in) : in_(in) {}

    [[nodiscard]] bool u8(std::uint8_t& v) { return get_be(v, 1); }
    [[nodiscard]] bool u16(std::uint16_t& v) { return get_be(v, 2); }
    [[nodiscard]] bool u32(std::uint32_t& v) { return get_be(v, 4); }
    [[nodiscard]] bool u64(std::uint64_t& v) { return get_be(v, 8); }
    template <std::size_t N>
    [[nodiscard]] bool raw(std::array<std::uint8_t, N>& out) {
        if (remaining() < N) return false;
        for (std::size_t i = 0; i < N; ++i) out[i] = in_[pos_ + i];
        pos_ += N;
        return true;
    }
    [[nodiscard]] bool raw(std::size_t n, ByteView& out) {
        if (remaining() < n) return false;
        out = in_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    [[nodiscard]] bool bytes8(ByteView& out) {
        std::uint8_t n = 0;
        return u8(n) && raw(n, out);
    }
    [[nodiscard]] bool bytes16(ByteView& out) {
        std::uint16_t n = 0;
        return u16(n) && raw(n, out);
    }
    [[nodiscard]] bool bytes32(ByteView& out) {
        std::uint32_t n = 0;
        return u32(n) && raw(n, out);
    }
    [[nodiscard]] bool text8(std::string& out) { return text_from(bytes8(view_), out); }
    [[nodiscard]] bool text16(std::string& out) { return text_from(bytes16(view_), out); }
    [[nodiscard]] bool rest(ByteView& out) { return raw(remaining(), out); }

    [[nodiscard]] std::size_t remaining() const { return in_.size() - pos_; }
    [[nodiscard]] bool at_end() const { return pos_ == in_.size(); }
    [[nodiscard]] std::size_t position() const { return pos_; }

private:
    template <typename T>
    bool get_be(T& v, std::size_t n) {
        if (remaining() < n) return false;
        std::uint64_t acc = 0;
        for (std::size_t i = 0; i < n; ++i) acc = (acc << 8) | in_[pos_ + i];
        v = static_cast<T>(acc);
        pos_ += n;
        return true;
    }
    bool text_from(bool ok, std::string& out) {
        if (!ok) return false;
        out.assign(reinterpret_cast<const char*>(view_.data()), view_.size());
        return true;
    }
    ByteView in_;
    ByteView view_;
    std::size_t pos_ = 0;
};

}  // namespace aegis
