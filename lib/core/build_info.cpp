#include "core/build_info.h"

#include <fmt/format.h>
#include <openssl/opensslv.h>
#include <sodium/version.h>
#include <sqlite3.h>

#include <boost/version.hpp>

#include "aegis_revision.h"

namespace aegis {

// Only the headers' version macros are read here: the compile-time versions, not the loaded ones.
std::string build_info() {
    return fmt::format("git {}; libsodium {}, OpenSSL {}, SQLite {}, Boost {}.{}.{}", AEGIS_REVISION,
                       SODIUM_VERSION_STRING, OPENSSL_VERSION_STR, SQLITE_VERSION, BOOST_VERSION / 100000,
                       BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100);
}

std::string source_revision() {
    return AEGIS_REVISION;
}

}  // namespace aegis
