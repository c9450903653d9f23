#pragma once
// Shared pieces of the fuzz targets: the libFuzzer entry point's signature, an invariant check
// that crashes (so libFuzzer keeps the input), and the fixed inputs of PROTOCOL.md §12.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/bytes.h"
#include "crypto/primitives.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace aegis::fuzz {

// A broken invariant is a crash, in the replay driver as under libFuzzer.
inline void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

template <std::size_t N>
[[nodiscard]] std::array<std::uint8_t, N> filled(std::uint8_t byte) {
    std::array<std::uint8_t, N> out{};
    out.fill(byte);
    return out;
}

// Hex written into the harness itself; a typo there is a harness bug, so it traps.
[[nodiscard]] inline Bytes unhex(std::string_view text) {
    auto bytes = crypto::hex_decode(text);
    check(bytes.has_value());
    return std::move(*bytes);
}

[[nodiscard]] inline crypto::SymmetricKey key_from_hex(std::string_view text) {
    const Bytes bytes = unhex(text);
    check(bytes.size() == 32);
    return crypto::SymmetricKey(std::span<const std::uint8_t, 32>(bytes.data(), 32));
}

// Reads the input front to back: a mode byte, length-prefixed pieces, the rest.
class InputCursor {
public:
    InputCursor(const std::uint8_t* data, std::size_t size) : rest_(data, size) {}

    [[nodiscard]] std::uint8_t byte() {
        if (rest_.empty()) return 0;
        const std::uint8_t value = rest_.front();
        rest_ = rest_.subspan(1);
        return value;
    }
    // A piece whose length is given by one leading byte (cut short at the end of the input).
    [[nodiscard]] ByteView piece() {
        const std::size_t wanted = byte();
        const std::size_t length = wanted < rest_.size() ? wanted : rest_.size();
        const ByteView out = rest_.first(length);
        rest_ = rest_.subspan(length);
        return out;
    }
    [[nodiscard]] ByteView rest() {
        const ByteView out = rest_;
        rest_ = {};
        return out;
    }
    [[nodiscard]] bool empty() const { return rest_.empty(); }

private:
    ByteView rest_;
};

// PROTOCOL.md §12: fixed inputs and the values they give.
namespace vectors {
inline constexpr std::uint64_t kTimestamp = 1'700'000'000'000;
inline constexpr std::string_view kServerName = "gateway.example:8443/aegis";
inline constexpr std::string_view kRequestedId = "host42";
inline constexpr std::string_view kClientHello =
    "01015dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef220404040404040404040404040404"
    "0404040404040404040404040404040404040000018bcfe56800001a676174657761792e6578616d706c653a38343433"
    "2f6165676973";
inline constexpr std::string_view kServerHello =
    "020150a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d0606060606060606060606060606"
    "060606060606060606060606060606060606000000703e06ee2cd546a0aa88e76af1b0271dba9f5929c3a70a08564f96"
    "31108795a3a62af15a13067e1ab7b3a2dd60ed17fd6b482c0d24d2129a3a12c3c3eec5693ce16a28b9de663c296b63b0"
    "c4425ba00a4060d4c756b517812bb5f5056736825cd4ddb8ea9ce4f2c6b62b700326a12ea0d9";
inline constexpr std::string_view kClientAuth =
    "03000000976a43745f14eb784ccea9618652b0fd58c550f26baa9001170b5c79cd578ba18b034eb42621b1c96a0b119c"
    "4d2d804406790560360d35b23f95e1f0c27b5efb8020a1b9d19e76454a2bb2fcc9a99931b812d40056b61618438e22f5"
    "b2059306a0eaad092e9c3bffa7592b1e6c6cb5262b23d5848c4da11cde33ece9da071d35d963c38a3658c3d05a259d47"
    "4c414b62ff71dfbecef2b924";
inline constexpr std::string_view kServerFinish =
    "040000005190575b122ce69e01c6111a971db313ad0a304a2bc2ae9203e65fc007c8d68c19eaac555a7085de915ab336"
    "9a560cf51b53b65fcd8cab874ab2da25304a07960d62f30352a1b68c2dd375bfae13226acb1b";
inline constexpr std::string_view kThA = "badcc1de97b2bdda58a275372037fe8a7128ff74d933f3b97057ea79cf08dd8d";
inline constexpr std::string_view kThB = "2fc985125f41b2e077bcc58b89e37df5755faa60d6cebc64ee8e65ac2b8c4712";
inline constexpr std::string_view kThC = "373095dafac064b69ef35097589ab6b2eb43c23c62a81d69661729a14c913576";
inline constexpr std::string_view kHsS2c = "eaf927b0ccafd5ab9c1d28e3b9231a708fac2d04e7ac91933fbd2798fd0199fb";
inline constexpr std::string_view kHsC2s = "7b49bf0497caaaa19560a736f88ca467277a130484009fcbadf3f8d52bd4451a";
inline constexpr std::string_view kC2s = "7b8aa1f35ec292af068492195048dcf1fed527537c55e1b776ddbb097160284d";
inline constexpr std::string_view kS2c = "605f6f2d8dac37a5483171f443757a96f35b260bf1214cc0ca56e89e5e0c99aa";
}  // namespace vectors

// A handshake message of `type` whose sealed part is `plaintext` under `key`, so the fuzzer
// reaches the parser behind the AEAD: type || u32 length || AEAD(key, counter, ad, plaintext).
[[nodiscard]] inline Bytes sealed_message(std::uint8_t type, std::string_view key_hex, std::uint64_t counter,
                                          std::string_view ad_hex, ByteView plaintext) {
    const crypto::SymmetricKey key = key_from_hex(key_hex);
    const Bytes ad = unhex(ad_hex);
    const Bytes sealed = crypto::aead_seal(key, counter, ad, plaintext);
    Bytes out{type};
    const auto length = static_cast<std::uint32_t>(sealed.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(length >> shift));
    out.insert(out.end(), sealed.begin(), sealed.end());
    return out;
}

}  // namespace aegis::fuzz
