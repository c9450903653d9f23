#include "cli/tool.h"

#include <cstdio>
#include <exception>

#include <boost/program_options/errors.hpp>
#include <fmt/format.h>

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

std::string version_line(std::string_view tool) { return fmt::format("{} (Aegis) {}", tool, AEGIS_VERSION); }

}  // namespace aegis::cli
