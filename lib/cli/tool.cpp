#include "cli/tool.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options/errors.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <cstdio>
#include <exception>
#include <sstream>
#include <utility>
#include <vector>

#include "cli/duration.h"
#include "core/build_info.h"

namespace aegis::cli {

namespace po = boost::program_options;

int report(std::string_view tool, const Error& error) {
    fmt::print(stderr, "{}: error: {}\n", tool, error.message);
    return to_int(error.exit);
}

Error usage_error(std::string_view tool, std::string_view what) {
    return make_error(ExitCode::usage, "{} (see {} --help)", what, tool);
}

int run_tool(std::string_view tool, const std::function<int()>& body) {
    try {
        return body();
    } catch (const boost::program_options::error& e) {
        fmt::print(stderr, "{}: error: {} (see {} --help)\n", tool, e.what(), tool);
        return to_int(ExitCode::usage);
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: error: {}\n", tool, e.what());
        return to_int(ExitCode::failure);
    }
}

std::string help_table(const boost::program_options::options_description& options) {
    constexpr std::size_t kWidth = 80;
    constexpr std::size_t kWidestColumn = 40;  // a longer option name puts its description below it
    std::vector<std::pair<std::string, std::string>> rows;
    std::size_t column = 0;
    for (const auto& option : options.options()) {
        std::string name = "  " + option->format_name();
        if (const auto parameter = option->format_parameter(); !parameter.empty()) name += " " + parameter;
        if (name.size() + 2 <= kWidestColumn) column = std::max(column, name.size() + 2);
        rows.emplace_back(std::move(name), option->description());
    }
    // The caption, as Program_options prints it (it has no accessor): what comes before the options.
    std::ostringstream printed;
    printed << options;
    std::string out = printed.str();
    if (const auto first = out.find("\n  -"); first != std::string::npos) {
        out.resize(first + 1);
    } else if (out.rfind("  -", 0) == 0) {
        out.clear();
    }
    for (const auto& [name, description] : rows) {
        std::string line = name;
        if (line.size() + 1 > column) {
            out += line + '\n';
            line.clear();
        }
        line.resize(column, ' ');
        bool first = true;
        std::istringstream words(description);
        for (std::string word; words >> word; first = false) {
            if (!first && line.size() + 1 + word.size() > kWidth) {
                out += line + '\n';
                line = std::string(column, ' ') + word;
            } else {
                line += (first ? "" : " ") + word;
            }
        }
        out += line + '\n';
    }
    return out;
}

std::string version_line(std::string_view tool) {
    return fmt::format("{} (Aegis) {}\n{}", tool, AEGIS_VERSION, build_info());
}

Result<std::chrono::milliseconds> CommonOptions::timeout_or_default() const {
    if (!timeout) return timeout_default;
    return parse_duration(*timeout, "--timeout", std::chrono::milliseconds(1), timeout_max);
}

bool print_help_or_version(std::string_view tool, const CommonOptions& common) {
    if (common.help) {
        fmt::print("{}", common.help_text);
    } else if (common.version) {
        fmt::print("{}\n", version_line(tool));
    }
    return common.help || common.version;
}

po::typed_value<std::string>* optional_text(std::optional<std::string>* target) {
    return po::value<std::string>()->notifier([target](const std::string& text) { *target = text; });
}

CommandLine::CommandLine(const std::string& caption) : visible_(caption) {}

po::options_description_easy_init CommandLine::add_options() {
    return visible_.add_options();
}

CommandLine& CommandLine::timeout(std::chrono::milliseconds fallback, std::chrono::milliseconds max,
                                  std::string_view what) {
    common.timeout_default = fallback;
    common.timeout_max = max;
    has_timeout_ = true;
    const auto line = fmt::format("{} ({}-{}, default: {})", what, duration_text(std::chrono::milliseconds(1)),
                                  duration_text(max), duration_text(fallback));
    visible_.add_options()("timeout", po::value<std::string>()->value_name("DURATION"), line.c_str());
    return *this;
}

CommandLine& CommandLine::socket(std::string* target, std::string_view what) {
    const auto line = fmt::format("{} (default: $AEGIS_SOCKET or $XDG_RUNTIME_DIR/aegis/broker.sock)", what);
    visible_.add_options()("socket", po::value(target != nullptr ? target : &common.socket)->value_name("PATH"),
                           line.c_str());
    return *this;
}

CommandLine& CommandLine::help_and_version(const HelpAndVersion& words) {
    visible_.add_options()(words.help_name, po::bool_switch(), words.help)(words.version_name, po::bool_switch(),
                                                                           words.version);
    has_help_ = true;
    return *this;
}

CommandLine& CommandLine::operands(const char* name, const po::value_semantic* value, int count) {
    hidden_.add_options()(name, value);
    positional_.add(name, count);
    has_operands_ = true;
    return *this;
}

po::variables_map& CommandLine::store(int argc, char** argv) {
    all_.add(visible_).add(hidden_);
    po::command_line_parser parser(argc, argv);
    parser.options(all_);
    if (has_operands_) parser.positional(positional_);  // without operands, a stray word is ignored
    po::store(parser.run(), values_);
    if (has_help_) {
        common.help = values_["help"].as<bool>();
        common.version = values_["version"].as<bool>();
    }
    if (has_timeout_ && values_.count("timeout") != 0) common.timeout = values_["timeout"].as<std::string>();
    common.help_text = help_table(visible_);
    return values_;
}

void CommandLine::notify() {
    po::notify(values_);
}

bool CommandLine::parse(int argc, char** argv, CommonOptions& out) {
    store(argc, argv);
    notify();
    out = common;
    return !common.help && !common.version;
}

}  // namespace aegis::cli
