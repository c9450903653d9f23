// aegis-keygen -l: the fingerprint of a key file, as a line or (--json) an object.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/tool.h"
#include "commands.h"

namespace aegis::keygen {

std::string fingerprint_line(const crypto::PublicKey& key, const std::string& comment) {
    const auto fingerprint = crypto::fingerprint(key);
    return comment.empty() ? fingerprint : fmt::format("{} {}", fingerprint, comment);
}

int show_fingerprint(const Options& options) {
    const auto path = key_path(options);
    const auto loaded = identity::load_public_key(path);
    if (!loaded) return cli::report(kTool, loaded.error());
    if (!options.json) {
        fmt::print("{}\n", fingerprint_line(loaded->key, loaded->comment));
        return 0;
    }
    const nlohmann::json out{{"fingerprint", crypto::fingerprint(loaded->key)},
                             {"comment", loaded->comment},
                             {"type", "ed25519"},
                             {"public_key", crypto::base64_encode(loaded->key)},
                             {"file", path.string()}};
    // A comment or path need not be UTF-8; replace bad bytes rather than fail.
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
}

}  // namespace aegis::keygen
