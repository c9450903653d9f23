#include "options.h"

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <sstream>
#include <vector>

#include "cli/number_option.h"
#include "cli/tool.h"
#include "identity/keyfile.h"

namespace aegis::keygen {
namespace {

namespace po = boost::program_options;

// The options, --help and --version, and the operands (-s KEY.pub...).
void describe(cli::CommandLine& line) {
    // clang-format off
    line.add_options()
        ("file,f", po::value<std::string>()->value_name("FILE"), "secret key file; the public key goes in FILE.pub")
        ("comment,C", po::value<std::string>()->value_name("COMMENT"), "comment for a new key (default: user@hostname)")
        ("force", po::bool_switch(), "replace an existing key file and its .pub")
        ("quiet,q", po::bool_switch(), "print nothing when a key is made")
        ("print-public,y", po::bool_switch(), "print the public key line of a secret key file")
        ("fingerprint,l", po::bool_switch(), "print the fingerprint of a secret or public key file")
        ("json", po::bool_switch(), "with -l or -L: print one JSON object")
        ("sign,s", po::value<std::string>()->value_name("CA_KEY"), "certify each KEY.pub with the CA's secret key file, writing KEY-cert.pub")
        ("id,I", po::value<std::string>()->value_name("ID"), "with -s: the identity id the certificate grants")
        ("role,r", po::value<std::string>()->value_name("ROLE"), "with -s: agent, backend or gateway")
        ("narrow,n", po::value<std::string>()->value_name("NARROWING"), "with -s: pub=PATTERN[,sub=PATTERN], as the authorized file's options")
        ("validity,V", po::value<std::string>()->value_name("VALIDITY"), "with -s: [FROM:]TO in UTC, e.g. +52w or 20270101:20280101 (default always:forever)")
        ("serial,z", cli::whole_number(nullptr, 0, UINT64_MAX)->value_name("SERIAL"), "with -s: the serial number, for revocation (0-18446744073709551615; default random)")
        ("show-certificate,L", po::bool_switch(), "show the certificate file given with -f");
    // clang-format on
    // -V is --validity here.
    line.help_and_version({"help,h", "print this help and exit", "version", "print the version and exit"});
    line.operands("key", po::value<std::vector<std::string>>(), -1);
}

[[noreturn]] void usage_error(const std::string& message) {
    throw po::error(message);
}

[[nodiscard]] Mode choose_mode(const po::variables_map& given) {
    if (given["help"].as<bool>()) return Mode::help;
    if (given["version"].as<bool>()) return Mode::version;
    const bool print_public = given["print-public"].as<bool>();
    const bool fingerprint = given["fingerprint"].as<bool>();
    const bool sign = given.count("sign") != 0;
    const bool show = given["show-certificate"].as<bool>();
    if (int(print_public) + int(fingerprint) + int(sign) + int(show) > 1)
        usage_error("-y, -l, -s and -L cannot be used together");
    if (print_public) return Mode::print_public;
    if (fingerprint) return Mode::fingerprint;
    if (sign) return Mode::sign;
    if (show) return Mode::show_certificate;
    return Mode::generate;
}

void check_certificate_request(const Options& options, const po::variables_map& given) {
    const bool signing = options.mode == Mode::sign;
    for (const auto* name : {"id", "role", "narrow", "validity", "serial"}) {
        if (!signing && given.count(name) != 0)
            usage_error(fmt::format("--{} applies only when signing a certificate (-s)", name));
    }
    if (!signing) {
        if (!options.keys.empty()) usage_error("aegis-keygen takes key files as operands only with -s");
        return;
    }
    if (options.certificate.id.empty()) usage_error("-s needs the certificate's identity id (-I ID)");
    if (options.certificate.role.empty()) usage_error("-s needs the certificate's role (-r agent|backend|gateway)");
    if (options.keys.empty()) usage_error("-s needs the public key file(s) to certify (KEY.pub)");
    if (options.file || options.json) usage_error("-f and --json do not apply to -s (give KEY.pub operands)");
}

void check_combination(const Options& options) {
    if (options.mode == Mode::sign) {
        if (options.comment && !identity::is_valid_comment(*options.comment))
            usage_error("the comment must be one line of printable text (at most 1024 bytes)");
        if (options.quiet && options.json) usage_error("-q and --json cannot be used together");
        return;
    }
    if (options.mode == Mode::generate) {
        if (options.json) usage_error("--json applies only to -l");
        if (options.comment && !identity::is_valid_comment(*options.comment)) {
            usage_error("the comment must be one line of printable text (at most 1024 bytes)");
        }
        return;
    }
    if (options.json && options.mode != Mode::fingerprint && options.mode != Mode::show_certificate)
        usage_error("--json applies only to -l and -L");
    if (options.comment || options.force || options.quiet)
        usage_error("-C, --force and -q apply only when making a key or a certificate");
}

}  // namespace

Options parse_options(int argc, char** argv) {
    cli::CommandLine line("Options");
    describe(line);
    cli::CommonOptions common;
    (void)line.parse(argc, argv, common);  // choose_mode() answers --help and --version
    const auto& given = line.values();
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
    if (given.count("key") != 0) {
        for (const auto& key : given["key"].as<std::vector<std::string>>()) {
            if (key.empty()) usage_error("a key file name is empty");
            options.keys.emplace_back(key);
        }
    }
    if (given.count("sign") != 0) {
        const auto& ca = given["sign"].as<std::string>();
        if (ca.empty()) usage_error("the CA key file name (-s) is empty");
        options.certificate.ca_key = ca;
    }
    if (given.count("id") != 0) options.certificate.id = given["id"].as<std::string>();
    if (given.count("role") != 0) options.certificate.role = given["role"].as<std::string>();
    if (given.count("narrow") != 0) options.certificate.narrowing = given["narrow"].as<std::string>();
    if (given.count("validity") != 0) options.certificate.validity = given["validity"].as<std::string>();
    if (given.count("serial") != 0) options.certificate.serial = given["serial"].as<std::uint64_t>();
    check_certificate_request(options, given);
    if (options.mode == Mode::show_certificate && !options.file)
        usage_error("-L needs the certificate file (-f KEY-cert.pub)");
    check_combination(options);
    return options;
}

std::string help_text() {
    cli::CommandLine line("Options");
    describe(line);
    std::ostringstream out;
    out << "Usage: aegis-keygen [-q] [--force] [-C COMMENT] [-f FILE]\n"
           "       aegis-keygen -y [-f FILE]\n"
           "       aegis-keygen -l [--json] [-f FILE]\n"
           "       aegis-keygen -s CA_KEY -I ID -r ROLE [-n NARROWING] [-V VALIDITY] [-z SERIAL]\n"
           "                    [-C COMMENT] [-q] [--force] KEY.pub...\n"
           "       aegis-keygen -L [--json] -f CERTIFICATE\n"
           "Make, show and check Aegis Ed25519 identity key files, and certify keys with an operator CA.\n\n"
        << cli::help_table(line.visible())
        << "\nFILE defaults to $XDG_CONFIG_HOME/aegis/id_ed25519, else ~/.config/aegis/id_ed25519.\n"
           "Exit status: 0 success, 2 usage error, 6 bad or existing key file, 1 other failure.\n"
           "See aegis-keygen(1).\n";
    return out.str();
}

}  // namespace aegis::keygen
