// aegis-keygen -y: the public key line of a secret key file.

#include <fmt/format.h>

#include "cli/tool.h"
#include "commands.h"

namespace aegis::keygen {

int print_public(const Options& options) {
    const auto loaded = identity::load_secret_key(key_path(options));
    if (!loaded) return cli::report(kTool, loaded.error());
    fmt::print("{}\n", identity::format_public_key_line(loaded->key.public_key(), loaded->comment));
    return 0;
}

}  // namespace aegis::keygen
