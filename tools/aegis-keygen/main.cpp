// aegis-keygen: make, show and check Aegis identity key files and certify them with an operator
// CA, with ssh-keygen's habits.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "certify.h"
#include "cli/tool.h"
#include "identity/keyfile.h"
#include "options.h"

namespace {

namespace identity = aegis::identity;
namespace keygen = aegis::keygen;

constexpr std::string_view kTool = "aegis-keygen";

[[nodiscard]] std::filesystem::path key_path(const keygen::Options& options) {
    return options.file.value_or(identity::default_key_path());
}

[[nodiscard]] std::string fingerprint_line(const aegis::crypto::PublicKey& key, const std::string& comment) {
    const auto fingerprint = aegis::crypto::fingerprint(key);
    return comment.empty() ? fingerprint : fmt::format("{} {}", fingerprint, comment);
}

int generate(const keygen::Options& options) {
    const auto path = key_path(options);
    const identity::Identity made{aegis::crypto::SigningKey::generate(),
                                  options.comment.value_or(identity::default_comment())};
    if (auto written = identity::write_key_pair(path, made, options.force); !written) {
        return aegis::cli::report(kTool, written.error());
    }
    if (!options.quiet) {
        fmt::print("Your secret key has been saved in {}\n", path.string());
        fmt::print("Your public key has been saved in {}\n", identity::public_key_path(path).string());
        fmt::print("The key fingerprint is:\n{}\n", fingerprint_line(made.key.public_key(), made.comment));
    }
    return 0;
}

int print_public(const keygen::Options& options) {
    const auto loaded = identity::load_secret_key(key_path(options));
    if (!loaded) return aegis::cli::report(kTool, loaded.error());
    fmt::print("{}\n", identity::format_public_key_line(loaded->key.public_key(), loaded->comment));
    return 0;
}

int show_fingerprint(const keygen::Options& options) {
    const auto path = key_path(options);
    const auto loaded = identity::load_public_key(path);
    if (!loaded) return aegis::cli::report(kTool, loaded.error());
    if (!options.json) {
        fmt::print("{}\n", fingerprint_line(loaded->key, loaded->comment));
        return 0;
    }
    const nlohmann::json out{{"fingerprint", aegis::crypto::fingerprint(loaded->key)},
                             {"comment", loaded->comment},
                             {"type", "ed25519"},
                             {"public_key", aegis::crypto::base64_encode(loaded->key)},
                             {"file", path.string()}};
    // A comment or path need not be UTF-8; replace bad bytes rather than fail.
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return aegis::cli::run_tool(kTool, [&] {
        const auto options = keygen::parse_options(argc, argv);
        switch (options.mode) {
            case keygen::Mode::help: fmt::print("{}", keygen::help_text()); return 0;
            case keygen::Mode::version: fmt::print("{}\n", aegis::cli::version_line(kTool)); return 0;
            case keygen::Mode::print_public: return print_public(options);
            case keygen::Mode::fingerprint: return show_fingerprint(options);
            case keygen::Mode::sign: return keygen::sign_keys(options);
            case keygen::Mode::show_certificate: return keygen::show_certificate(options);
            case keygen::Mode::generate: break;
        }
        return generate(options);
    });
}
