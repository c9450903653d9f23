#include "store/private_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace aegis::store {

namespace {

constexpr mode_t kGroupOrOthers = S_IRWXG | S_IRWXO;

// The owner and mode rules shared by directories and files; `what` names the kind in the message.
[[nodiscard]] Result<void> check_owner_and_mode(const std::filesystem::path& path, const struct stat& info,
                                                std::string_view what, std::string_view private_mode) {
    const auto user = ::geteuid();
    if (info.st_uid != user && info.st_uid != 0) {
        return make_error(ExitCode::bad_input, "{} {} belongs to uid {}, not to uid {} that runs this; chown {} {}",
                          what, path.string(), info.st_uid, user, user, path.string());
    }
    if ((info.st_mode & kGroupOrOthers) != 0) {
        return make_error(ExitCode::bad_input, "{} {} is open to the group or others (mode {:04o}); chmod {} {}", what,
                          path.string(), info.st_mode & 07777, private_mode, path.string());
    }
    return {};
}

}  // namespace

Result<void> prepare_state_directory(const std::filesystem::path& directory) {
    const auto name = directory.string();
    std::error_code error;
    if (const auto parent = directory.parent_path(); !parent.empty()) {
        std::filesystem::create_directories(parent, error);
        if (error) return make_error(ExitCode::failure, "cannot create state directory {}: {}", name, error.message());
    }
    // mkdir's mode is final (the umask can only take bits away): no moment with a wider one.
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(ExitCode::failure, "cannot create state directory {}: {}", name, std::strerror(errno));
    }
    struct stat info {};
    if (::stat(directory.c_str(), &info) != 0) {
        return make_error(ExitCode::failure, "cannot use state directory {}: {}", name, std::strerror(errno));
    }
    if (!S_ISDIR(info.st_mode)) return make_error(ExitCode::bad_input, "state directory {} is not a directory", name);
    if (auto owned = check_owner_and_mode(directory, info, "state directory", "700"); !owned) return owned;
    if (::access(directory.c_str(), W_OK | X_OK) != 0)
        return make_error(ExitCode::failure, "state directory {} is not writable", name);
    return {};
}

Result<void> check_private_file(const std::filesystem::path& file) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) {
        if (errno == ENOENT) return {};
        return make_error(ExitCode::failure, "cannot use state file {}: {}", file.string(), std::strerror(errno));
    }
    if (!S_ISREG(info.st_mode)) return make_error(ExitCode::bad_input, "state file {} is not a file", file.string());
    return check_owner_and_mode(file, info, "state file", "600");
}

Result<void> create_private_file(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        ::close(fd);
        return {};
    }
    if (errno == EEXIST) return {};
    return make_error(ExitCode::failure, "cannot open {}: {} (does the directory exist and is it writable?)",
                      file.string(), std::strerror(errno));
}

}  // namespace aegis::store
