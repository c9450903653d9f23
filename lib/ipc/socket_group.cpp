#include <grp.h>

#include <string>
#include <vector>

#include "ipc/socket_path.h"

// Apart from the rest of socket_path.cpp: the name service is for the broker, and aegis-send,
// linked statically (AEGIS_STATIC_SEND), must not link it.
namespace aegis::ipc {

Result<gid_t> lookup_group(std::string_view name) {
    const std::string text(name);
    std::vector<char> buffer(16 * 1024);
    group entry{};
    group* found = nullptr;
    const int looked = ::getgrnam_r(text.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (looked == 0 && found != nullptr) return found->gr_gid;
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 10) {
        return static_cast<gid_t>(std::stoul(text));
    }
    return make_error(ExitCode::usage, "--socket-group: no group named '{}'", text);
}

}  // namespace aegis::ipc
