#include "cli/config_file.h"

#include <fmt/format.h>

#include <boost/program_options/errors.hpp>
#include <boost/program_options/parsers.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace aegis::cli {

namespace po = boost::program_options;

namespace {

[[nodiscard]] std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

}  // namespace

po::options_description file_options(const po::options_description& options,
                                     std::initializer_list<std::string_view> excluded) {
    po::options_description allowed;
    for (const auto& option : options.options()) {
        bool skip = false;
        for (const auto name : excluded) skip = skip || option->long_name() == name;
        if (!skip) allowed.add(option);
    }
    return allowed;
}

std::optional<std::filesystem::path> config_file_to_read(const std::string& given,
                                                         const std::filesystem::path& fallback) {
    if (!given.empty()) return std::filesystem::path(given);
    std::error_code ignored;
    if (std::filesystem::exists(fallback, ignored)) return fallback;
    return std::nullopt;
}

std::vector<std::string> store_config_file(const std::filesystem::path& file, const po::options_description& options,
                                           po::variables_map& values) {
    std::vector<std::string> problems;
    std::ifstream in(file);
    if (!in) {
        problems.push_back(fmt::format("{}: cannot read it: {}", file.string(), std::strerror(errno)));
        return problems;
    }
    std::map<std::string, int, std::less<>> seen;  // name -> the line that set it
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        const auto content = trim(line);
        if (content.empty() || content.front() == '#') continue;
        const auto where = fmt::format("{}:{}", file.string(), number);
        if (content.front() == '[') {
            problems.push_back(fmt::format("{}: sections are not used; write 'name = value' lines", where));
            continue;
        }
        const auto equals = content.find('=');
        if (equals == std::string_view::npos) {
            problems.push_back(fmt::format("{}: '{}' is not 'name = value'", where, content));
            continue;
        }
        const std::string name(trim(content.substr(0, equals)));
        if (const auto before = seen.find(name); before != seen.end()) {
            problems.push_back(fmt::format("{}: '{}' is set twice (first on line {})", where, name, before->second));
            continue;
        }
        try {
            std::istringstream one(std::string(content) + '\n');
            const auto parsed = po::parse_config_file(one, options, false);
            // The value is checked on its own first: store() skips a name the command line set,
            // and a bad line must be reported all the same.
            po::variables_map alone;
            po::store(parsed, alone);
            po::store(parsed, values);
            seen.emplace(name, number);
        } catch (const po::unknown_option&) {
            problems.push_back(fmt::format("{}: unknown option '{}'", where, name));
        } catch (const po::error& e) {
            problems.push_back(fmt::format("{}: {}", where, e.what()));
        }
    }
    return problems;
}

}  // namespace aegis::cli
