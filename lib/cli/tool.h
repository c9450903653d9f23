#pragma once
// What every tool's main shares: the options every tool takes (--socket, --timeout, --help,
// --version) and the parse-and-help tail, one error line on stderr, the exit code, --version
// text, and turning Boost.Program_options failures into usage errors.

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <boost/program_options/variables_map.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aegis::cli {

// Prints "<tool>: error: <message>" on stderr and returns the exit code to use.
int report(std::string_view tool, const Error& error);

// A usage error that points at --help: "<what> (see <tool> --help)".
[[nodiscard]] Error usage_error(std::string_view tool, std::string_view what);

// Runs a tool's body, turning an option-parsing error or an escaped exception into one
// error line and the matching exit code (usage errors give 2, anything else 1).
int run_tool(std::string_view tool, const std::function<int()>& body);

// --help's table of options, laid out as Program_options does but wrapped at spaces only, so
// that a path or a default is never cut in the middle of a word.
[[nodiscard]] std::string help_table(const boost::program_options::options_description& options);

// "<tool> (Aegis) <version>", then a line with the revision and the libraries' versions.
[[nodiscard]] std::string version_line(std::string_view tool);

// The options every tool shares, as the command line gave them.
struct CommonOptions {
    std::string socket;                  // --socket; empty: the default broker socket
    std::optional<std::string> timeout;  // --timeout as given; checked by timeout_or_default()
    std::chrono::milliseconds timeout_default{0};
    std::chrono::milliseconds timeout_max{0};
    bool help = false;
    bool version = false;
    std::string help_text;  // what --help prints

    // --timeout within 1ms to timeout_max, or timeout_default when not given; ExitCode::usage
    // naming --timeout and the range otherwise.
    [[nodiscard]] Result<std::chrono::milliseconds> timeout_or_default() const;
};

// --help or --version when asked: prints it and returns true (the tool then exits 0).
[[nodiscard]] bool print_help_or_version(std::string_view tool, const CommonOptions& common);

// A string option whose absence matters: `target` is set only when the option is given.
[[nodiscard]] boost::program_options::typed_value<std::string>* optional_text(std::optional<std::string>* target);

// The words of --help and --version, for the tools whose short options mean something else.
struct HelpAndVersion {
    const char* help_name = "help,h";
    const char* help = "show this help";
    const char* version_name = "version,V";
    const char* version = "show the version";
};

// A tool's command line (mosquitto's client_shared.c): the tool adds its own options, then the
// shared ones, in --help's order, and its operands; reading it fills `common` and the help text.
// Reading throws boost::program_options::error for a usage error (run_tool: exit 2).
class CommandLine {
public:
    // `caption`: the usage lines and what the tool does, ending with "Options".
    explicit CommandLine(const std::string& caption);
    CommandLine(const CommandLine&) = delete;  // the options point into `common`
    CommandLine& operator=(const CommandLine&) = delete;

    // The tool's own options, shown in the order added.
    [[nodiscard]] boost::program_options::options_description_easy_init add_options();
    // --timeout DURATION from 1ms to `max`, `fallback` when not given; `what` starts its line.
    CommandLine& timeout(std::chrono::milliseconds fallback, std::chrono::milliseconds max,
                         std::string_view what = "give up after DURATION");
    // --socket PATH into `target` (null: common.socket); `what` starts its line.
    CommandLine& socket(std::string* target = nullptr, std::string_view what = "broker socket");
    // --help and --version, last in --help.
    CommandLine& help_and_version(const HelpAndVersion& words = {});
    // Operands after the options: `count` of them (-1: any number) stored under `name`.
    CommandLine& operands(const char* name, const boost::program_options::value_semantic* value, int count);

    // Reads argv into values() and fills `common` (without notifying: a configuration file
    // may add values first, then notify()).
    boost::program_options::variables_map& store(int argc, char** argv);
    void notify();
    // store() then notify(), every option's target set, and `common` copied to `out`. False when
    // --help or --version was asked: the tool answers that and checks nothing else.
    [[nodiscard]] bool parse(int argc, char** argv, CommonOptions& out);

    [[nodiscard]] boost::program_options::variables_map& values() { return values_; }
    // Every option, operands included (what a configuration file may set).
    [[nodiscard]] const boost::program_options::options_description& all() const { return all_; }
    // The options --help lists.
    [[nodiscard]] const boost::program_options::options_description& visible() const { return visible_; }

    CommonOptions common;

private:
    boost::program_options::options_description visible_;
    boost::program_options::options_description hidden_;
    boost::program_options::options_description all_;
    boost::program_options::positional_options_description positional_;
    boost::program_options::variables_map values_;
    bool has_operands_ = false;
    bool has_help_ = false;
    bool has_timeout_ = false;
};

}  // namespace aegis::cli
