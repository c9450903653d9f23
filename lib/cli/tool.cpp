#include "cli/tool.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options/errors.hpp>
#include <boost/program_options/options_description.hpp>
#include <cstdio>
#include <exception>
#include <sstream>
#include <utility>
#include <vector>

#include "core/build_info.h"

namespace aegis::cli {

int report(std::string_view tool, const Error& error) {
    fmt::print(stderr, "{}: error: {}\n", tool, error.message);
    return to_int(error.exit);
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

}  // namespace aegis::cli
