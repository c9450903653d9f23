#pragma once
// An option that takes one word of a fixed list (--log-level error|warn|info|debug): any other
// word is refused while the command line (or a configuration file) is read, naming the option
// and the words it takes.
//
//   ("log-level", cli::one_of(&level, {"error", "warn", "info", "debug"})->value_name("LEVEL"), "...")

#include <boost/program_options/value_semantic.hpp>
#include <initializer_list>
#include <string>
#include <string_view>

namespace aegis::cli {

[[nodiscard]] boost::program_options::typed_value<std::string>* one_of(std::string* target,
                                                                       std::initializer_list<std::string_view> words);

}  // namespace aegis::cli
