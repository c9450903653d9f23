// aegis-keygen: make, show and check Aegis identity key files and certify them with an operator
// CA, with ssh-keygen's habits. Each mode is a short file (commands.h, certify.h).

#include <fmt/format.h>

#include "certify.h"
#include "cli/tool.h"
#include "commands.h"
#include "options.h"

namespace keygen = aegis::keygen;

int main(int argc, char** argv) {
    return aegis::cli::run_tool(keygen::kTool, [&] {
        const auto options = keygen::parse_options(argc, argv);
        switch (options.mode) {
            case keygen::Mode::help: fmt::print("{}", keygen::help_text()); return 0;
            case keygen::Mode::version: fmt::print("{}\n", aegis::cli::version_line(keygen::kTool)); return 0;
            case keygen::Mode::print_public: return keygen::print_public(options);
            case keygen::Mode::fingerprint: return keygen::show_fingerprint(options);
            case keygen::Mode::sign: return keygen::sign_keys(options);
            case keygen::Mode::show_certificate: return keygen::show_certificate(options);
            case keygen::Mode::generate: break;
        }
        return keygen::generate(options);
    });
}
