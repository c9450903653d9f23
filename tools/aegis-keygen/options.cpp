#include "options.h"

#include <boost/program_options.hpp>
#include <sstream>
#include <vector>

#include "cli/tool.h"
#include "identity/keyfile.h"

namespace aegis::keygen {
namespace {

namespace po = boost::program_options;

[[nodiscard]] po::options_description describe() {
    po::options_description options("Options");
    // clang-format off
    options.add_options()
        ("file,f", po::value<std::string>()->value_name("FILE"), "secret key file; the public key goes in FILE.pub")
        ("comment,C", po::value<std::string>()->value_name("COMMENT"), "comment for a new key (default: user@hostname)")
        ("force", po::bool_switch(), "replace an existing key file and its .pub")
        ("quiet,q", po::bool_switch(), "print nothing when a key is made")
        ("print-public,y", po::bool_switch(), "print the public key line of a secret key file")
        ("fingerprint,l", po::bool_switch(), "print the fingerprint of a secret or public key file")
        ("json", po::bool_switch(), "with -l: print one JSON object")
        ("help,h", po::bool_switch(), "print this help and exit")
        ("version,V", po::bool_switch(), "print the version and exit");
    // clang-format on
    return options;
}

[[noreturn]] void usage_error(const std::string& message) {
    throw po::error(message);
}

[[nodiscard]] Mode choose_mode(const po::variables_map& given) {
    if (given["help"].as<bool>()) return Mode::help;
    if (given["version"].as<bool>()) return Mode::version;
    const bool print_public = given["print-public"].as<bool>();
    const bool fingerprint = given["fingerprint"].as<bool>();
    if (print_public && fingerprint) usage_error("-y and -l cannot be used together");
    if (print_public) return Mode::print_public;
    if (fingerprint) return Mode::fingerprint;
    return Mode::generate;
}

void check_combination(const Options& options) {
    if (options.mode == Mode::generate) {
        if (options.json) usage_error("--json applies only to -l");
        if (options.comment && !identity::is_valid_comment(*options.comment)) {
            usage_error("the comment must be one line of printable text (at most 1024 bytes)");
        }
        return;
    }
    if (options.json && options.mode != Mode::fingerprint) usage_error("--json applies only to -l");
    if (options.comment || options.force || options.quiet)
        usage_error("-C, --force and -q apply only when making a key");
}

}  // namespace

Options parse_options(int argc, char** argv) {
    po::variables_map given;
    po::store(po::command_line_parser(argc, argv).options(describe()).positional({}).run(), given);
    po::notify(given);
    Options options;
    options.mode = choose_mode(given);
    if (options.mode == Mode::help || options.mode == Mode::version) return options;
    if (given.count("file") != 0) {
        const auto& file = given["file"].as<std::string>();
        if (file.empty()) usage_error("the key file name (-f) is empty");
        options.file = file;
    }
    if (given.count("comment") != 0) options.comment = given["comment"].as<std::string>();
    options.force = given["force"].as<bool>();
    options.quiet = given["quiet"].as<bool>();
    options.json = given["json"].as<bool>();
    check_combination(options);
    return options;
}

std::string help_text() {
    std::ostringstream out;
    out << "Usage: aegis-keygen [-q] [--force] [-C COMMENT] [-f FILE]\n"
           "       aegis-keygen -y [-f FILE]\n"
           "       aegis-keygen -l [--json] [-f FILE]\n"
           "Make, show and check Aegis Ed25519 identity key files.\n\n"
        << cli::help_table(describe())
        << "\nFILE defaults to $XDG_CONFIG_HOME/aegis/id_ed25519, else ~/.config/aegis/id_ed25519.\n"
           "Exit status: 0 success, 2 usage error, 6 bad or existing key file, 1 other failure.\n"
           "See aegis-keygen(1).\n";
    return out.str();
}

}  // namespace aegis::keygen
