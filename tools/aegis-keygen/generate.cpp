// aegis-keygen (no mode): make a key pair, never overwriting one silently.

#include <fmt/format.h>

#include "cli/tool.h"
#include "commands.h"

namespace aegis::keygen {

int generate(const Options& options) {
    const auto path = key_path(options);
    const identity::Identity made{crypto::SigningKey::generate(),
                                  options.comment.value_or(identity::default_comment())};
    if (auto written = identity::write_key_pair(path, made, options.force); !written) {
        return cli::report(kTool, written.error());
    }
    if (!options.quiet) {
        fmt::print("Your secret key has been saved in {}\n", path.string());
        fmt::print("Your public key has been saved in {}\n", identity::public_key_path(path).string());
        fmt::print("The key fingerprint is:\n{}\n", fingerprint_line(made.key.public_key(), made.comment));
    }
    return 0;
}

}  // namespace aegis::keygen
