// Secret key files (PROTOCOL.md §2). The loader takes a path, so each input is written to one
// file (mode 0600) in a private directory and loaded from there. Invariants: a key that loads
// has a public key matching its seed, and load_public_key derives that same key from the file.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fuzz_support.h"
#include "identity/keyfile.h"

using namespace aegis;
using namespace aegis::fuzz;

namespace {

namespace fs = std::filesystem;

// Created once per process and removed at exit; kept on the heap so that the exit handler never
// sees it destroyed.
const fs::path& scratch_directory() {
    static const fs::path* directory = [] {
        auto* path = new fs::path(fs::temp_directory_path() / ("aegis-fuzz-secret-key-" + std::to_string(::getpid())));
        fs::create_directories(*path);
        fs::permissions(*path, fs::perms::owner_all, fs::perm_options::replace);
        return path;
    }();
    static const bool cleanup_registered = [] {
        return std::atexit([] {
                   std::error_code ignored;
                   fs::remove_all(scratch_directory(), ignored);
               }) == 0;
    }();
    (void)cleanup_registered;
    return *directory;
}

void write_private_file(const fs::path& path, const std::uint8_t* data, std::size_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    check(fd >= 0);
    check(::fchmod(fd, 0600) == 0);
    std::size_t written = 0;
    while (written < size) {
        const ssize_t n = ::write(fd, data + written, size - written);
        check(n > 0);
        written += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path path = scratch_directory() / "id_ed25519";
    write_private_file(path, data, size);

    const auto secret = identity::load_secret_key(path);
    const auto derived = identity::load_public_key(path);
    if (!secret) return 0;
    const auto rebuilt = crypto::SigningKey::from_seed(secret->key.seed().view());
    check(rebuilt.public_key() == secret->key.public_key());
    check(derived.ok() && derived->key == secret->key.public_key());
    return 0;
}
