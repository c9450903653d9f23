#pragma once
// aegis-keygen's command line, parsed into a value (man aegis-keygen(1)).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aegis::keygen {

enum class Mode { generate, print_public, fingerprint, sign, show_certificate, help, version };

// What -s signs into each certificate besides the key (-I, -r, -n, -V, -z).
struct CertificateRequest {
    std::filesystem::path ca_key;
    std::string id;
    std::string role;
    std::optional<std::string> narrowing;  // "pub=PATTERN[,sub=PATTERN]"
    std::optional<std::string> validity;   // "[FROM:]TO"
    std::optional<std::uint64_t> serial;
};

struct Options {
    Mode mode = Mode::generate;
    std::optional<std::filesystem::path> file;
    std::optional<std::string> comment;
    bool force = false;
    bool quiet = false;
    bool json = false;
    CertificateRequest certificate;
    std::vector<std::filesystem::path> keys;  // -s: the public key files to certify
};

// Throws boost::program_options::error for an unknown option or a combination that makes no
// sense; cli::run_tool turns that into one line and exit status 2.
[[nodiscard]] Options parse_options(int argc, char** argv);

[[nodiscard]] std::string help_text();

}  // namespace aegis::keygen
