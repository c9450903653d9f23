#pragma once
// The daemons' configuration files (aegis-gateway.conf(5), aegis-connect.conf(5)): Program_options'
// config-file syntax, one `name = value` a line with the long option names, `#` comments. What
// the command line gave wins over the file.

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::cli {

// The options a file may set: `options` without those named in `excluded` (--help, --config...).
[[nodiscard]] boost::program_options::options_description file_options(
    const boost::program_options::options_description& options, std::initializer_list<std::string_view> excluded);

// The file to read: `given` (--config) when set, else `fallback` when it exists, else none.
[[nodiscard]] std::optional<std::filesystem::path> config_file_to_read(const std::string& given,
                                                                       const std::filesystem::path& fallback);

// Reads `file` line by line into `values`, where a value already stored (the command line) stays.
// Returns every problem, each "FILE:LINE: what" (an unknown name, a bad value, a name given twice,
// a line that is not `name = value`), or "FILE: cannot read it" once; empty when there is none.
[[nodiscard]] std::vector<std::string> store_config_file(const std::filesystem::path& file,
                                                         const boost::program_options::options_description& options,
                                                         boost::program_options::variables_map& values);

}  // namespace aegis::cli
