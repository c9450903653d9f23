#pragma once
// aegis-keygen's command line, parsed into a value (man aegis-keygen(1)).

#include <filesystem>
#include <optional>
#include <string>

namespace aegis::keygen {

enum class Mode { generate, print_public, fingerprint, help, version };

struct Options {
    Mode mode = Mode::generate;
    std::optional<std::filesystem::path> file;
    std::optional<std::string> comment;
    bool force = false;
    bool quiet = false;
    bool json = false;
};

// Throws boost::program_options::error for an unknown option or a combination that makes no
// sense; cli::run_tool turns that into one line and exit status 2.
[[nodiscard]] Options parse_options(int argc, char** argv);

[[nodiscard]] std::string help_text();

}  // namespace aegis::keygen
