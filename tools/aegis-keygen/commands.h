#pragma once
// aegis-keygen's modes, one short file each: generate.cpp (make a key pair), public.cpp (-y),
// fingerprint.cpp (-l), certify.cpp (-s, -L). Each returns the exit status, errors reported once.

#include <filesystem>
#include <string>
#include <string_view>

#include "crypto/primitives.h"
#include "identity/keyfile.h"
#include "options.h"

namespace aegis::keygen {

inline constexpr std::string_view kTool = "aegis-keygen";

// -f FILE, or the default identity.
[[nodiscard]] inline std::filesystem::path key_path(const Options& options) {
    return options.file.value_or(identity::default_key_path());
}

// "SHA256:... COMMENT" (without the comment when there is none).
[[nodiscard]] std::string fingerprint_line(const crypto::PublicKey& key, const std::string& comment);

[[nodiscard]] int generate(const Options& options);
[[nodiscard]] int print_public(const Options& options);
[[nodiscard]] int show_fingerprint(const Options& options);

}  // namespace aegis::keygen
