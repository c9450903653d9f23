#include "broker/known_backends.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "identity/keyfile.h"

namespace aegis::broker {

std::string canonical_url(const net::Url& url) {
    const bool ipv6 = url.host.find(':') != std::string::npos;
    return fmt::format("{}://{}{}{}:{}{}", url.tls ? "wss" : "ws", ipv6 ? "[" : "", url.host, ipv6 ? "]" : "", url.port,
                       url.target.empty() ? "/" : url.target);
}

Result<std::vector<crypto::PublicKey>> find_known_backends(const std::filesystem::path& file, std::string_view url) {
    std::vector<crypto::PublicKey> keys;
    std::ifstream in(file);
    if (!in) {
        if (errno == ENOENT) return keys;
        return make_error(ExitCode::bad_input, "cannot read {}: {}", file.string(), std::strerror(errno));
    }
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        const auto space = line.find_first_of(" \t", start);
        if (space == std::string::npos) {
            return make_error(ExitCode::bad_input, "{}:{}: expected 'URL aegis-ed25519 <base64>'", file.string(),
                              number);
        }
        if (std::string_view(line).substr(start, space - start) != url) continue;
        auto key = identity::parse_public_key_line(std::string_view(line).substr(space + 1));
        if (!key) return make_error(ExitCode::bad_input, "{}:{}: {}", file.string(), number, key.error().message);
        keys.push_back(key->key);
    }
    return keys;
}

Result<void> record_known_backend(const std::filesystem::path& file, std::string_view url,
                                  const crypto::PublicKey& key) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return make_error(ExitCode::failure, "cannot write {}: {}", file.string(), std::strerror(errno));
    const std::string line = fmt::format("{} {}\n", url, identity::format_public_key_line(key, ""));
    const auto written = ::write(fd, line.data(), line.size());
    const int saved = errno;
    ::close(fd);
    if (written != static_cast<ssize_t>(line.size())) {
        return make_error(ExitCode::failure, "cannot write {}: {}", file.string(), std::strerror(saved));
    }
    return {};
}

}  // namespace aegis::broker
