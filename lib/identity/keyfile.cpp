#include "identity/keyfile.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>
#include <vector>

namespace aegis::identity {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBlank = " \t\r\n";
constexpr std::size_t kMaxCommentSize = 1024;
constexpr std::size_t kSecretBlobSize = crypto::kSeedSize + crypto::kPublicKeySize;

// Closes a file descriptor on every way out.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    // Closes now, so a failing close (a lost write on some filesystems) can be reported.
    [[nodiscard]] bool close() {
        const int fd = fd_;
        fd_ = -1;
        return ::close(fd) == 0;
    }

private:
    int fd_;
};

// Wipes a string's whole allocation when it goes out of scope: it may hold secret text.
class WipeOnExit {
public:
    explicit WipeOnExit(std::string& text) : text_(text) {}
    ~WipeOnExit() {
        text_.resize(text_.capacity());
        crypto::secure_wipe(text_.data(), text_.size());
    }
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;

private:
    std::string& text_;
};

void wipe(Bytes& bytes) {
    bytes.resize(bytes.capacity());
    crypto::secure_wipe(bytes.data(), bytes.size());
}

struct KeyFile {
    std::string text;  // wiped by the reader's WipeOnExit
    mode_t mode = 0;
};

struct KeyLine {
    std::string_view type;
    std::string_view key;
    std::string_view comment;
};

[[nodiscard]] std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(kBlank);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(kBlank) - first + 1);
}

// Splits off the first blank-separated field; `rest` keeps what follows, trimmed.
[[nodiscard]] std::string_view take_field(std::string_view& rest) {
    const auto end = rest.find_first_of(kBlank);
    const auto field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : trim(rest.substr(end));
    return field;
}

[[nodiscard]] KeyLine split_line(std::string_view line) {
    KeyLine out;
    std::string_view rest = trim(line);
    out.type = take_field(rest);
    out.key = take_field(rest);
    out.comment = rest;
    return out;
}

[[nodiscard]] bool is_control(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
}

// What is wrong with the text of a key file or line, or nullopt when it is text at all.
[[nodiscard]] std::optional<std::string> text_problem(std::string_view text) {
    const auto line = trim(text);
    if (line.empty()) return "is empty";
    for (const char c : line) {
        if (is_control(c) && c != '\t' && c != '\n' && c != '\r') return "holds binary data, not an Aegis key";
    }
    return std::nullopt;
}

// Checked after the type, so that a foreign multi-line key (PEM) is named as such.
[[nodiscard]] std::optional<std::string> line_problem(std::string_view text) {
    if (trim(text).find_first_of("\r\n") != std::string_view::npos)
        return "has more than one line; an Aegis key is one line";
    return std::nullopt;
}

// Names what a foreign first field is, or nullopt when it is the type wanted.
[[nodiscard]] std::optional<std::string> type_problem(std::string_view type, std::string_view wanted) {
    if (type == wanted) return std::nullopt;
    if (type == kPublicKeyType) return "is an Aegis public key; a secret key is needed here";
    if (type == kSecretKeyType) return "is an Aegis secret key; a public key is needed here";
    if (type.starts_with("ssh-") || type.starts_with("ecdsa-sha2-") || type.starts_with("sk-")) {
        return "is an ssh key, not an Aegis key (make one with aegis-keygen)";
    }
    if (type.starts_with("-----BEGIN"))
        return "is a PEM or OpenSSH private key, not an Aegis key (make one with aegis-keygen)";
    return fmt::format("is not an Aegis key (expected a line starting '{}')", wanted);
}

[[nodiscard]] Error bad(std::string_view subject, std::string_view problem) {
    return make_error(ExitCode::bad_input, "{} {}", subject, problem);
}

// Decodes the key field; the bytes are the caller's to wipe when they are secret.
[[nodiscard]] Result<Bytes> decode_key(std::string_view key, std::size_t size, std::string_view subject) {
    if (key.empty()) return bad(subject, "is truncated (the key is missing)");
    auto decoded = crypto::base64_decode(key);
    if (!decoded) return bad(subject, "is truncated or corrupt (the key is not valid base64)");
    if (decoded->size() != size) {
        const auto problem =
            fmt::format("is truncated or corrupt (the key has {} bytes, not {})", decoded->size(), size);
        wipe(*decoded);
        return bad(subject, problem);
    }
    return std::move(*decoded);
}

[[nodiscard]] Result<PublicIdentity> parse_public(std::string_view text, std::string_view subject) {
    if (auto problem = text_problem(text)) return bad(subject, *problem);
    const auto line = split_line(text);
    if (auto problem = type_problem(line.type, kPublicKeyType)) return bad(subject, *problem);
    if (auto problem = line_problem(text)) return bad(subject, *problem);
    auto decoded = decode_key(line.key, crypto::kPublicKeySize, subject);
    if (!decoded) return decoded.take_error();
    PublicIdentity out;
    std::copy(decoded->begin(), decoded->end(), out.key.begin());
    out.comment = std::string(line.comment);
    return out;
}

[[nodiscard]] Result<Identity> parse_secret(const KeyFile& file, const fs::path& path) {
    const auto subject = fmt::format("key file '{}'", path.string());
    if (auto problem = text_problem(file.text)) return bad(subject, *problem);
    const auto line = split_line(file.text);
    if (auto problem = type_problem(line.type, kSecretKeyType)) return bad(subject, *problem);
    if (auto problem = line_problem(file.text)) return bad(subject, *problem);
    // Like ssh: a secret key others can read is refused before it is used.
    if ((file.mode & 077) != 0) {
        return make_error(
            ExitCode::bad_input,
            "permissions {:04o} for '{}' are too open; the key must be readable by its owner only (chmod 600)",
            file.mode & 07777, path.string());
    }
    auto decoded = decode_key(line.key, kSecretBlobSize, subject);
    if (!decoded) return decoded.take_error();
    const crypto::Secret<crypto::kSeedSize> seed(
        std::span<const std::uint8_t, crypto::kSeedSize>(decoded->data(), crypto::kSeedSize));
    auto key = crypto::SigningKey::from_seed(seed.view());
    const bool matches = crypto::constant_time_equal(key.public_key(), ByteView(*decoded).subspan(crypto::kSeedSize));
    wipe(*decoded);
    if (!matches) return bad(subject, "is corrupt (its public key does not match its secret seed)");
    return Identity{std::move(key), std::string(line.comment)};
}

[[nodiscard]] Error io_error(ExitCode exit, std::string_view what, const fs::path& path, int error_number) {
    return make_error(exit, "{} '{}': {}", what, path.string(), std::strerror(error_number));
}

// Reads a whole key file (a regular file of at most kMaxKeyFileSize bytes) into `out.text`.
[[nodiscard]] Result<void> read_key_file(const fs::path& path, KeyFile& out) {
    // O_NONBLOCK so that a FIFO given by mistake cannot hang the open.
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) return io_error(ExitCode::bad_input, "cannot read key file", path, errno);
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return io_error(ExitCode::bad_input, "cannot read key file", path, errno);
    const auto subject = fmt::format("key file '{}'", path.string());
    if (S_ISDIR(info.st_mode)) return bad(subject, "is a directory");
    if (!S_ISREG(info.st_mode)) return bad(subject, "is not a regular file");
    const auto too_large =
        fmt::format("is too large to be a key (a key file is one line of at most {} bytes)", kMaxKeyFileSize);
    if (info.st_size > static_cast<off_t>(kMaxKeyFileSize)) return bad(subject, too_large);
    out.mode = info.st_mode & 07777;
    // Sized once and never grown, so no unwiped copy of the text is left behind by a reallocation.
    out.text.assign(kMaxKeyFileSize + 1, '\0');
    std::size_t used = 0;
    while (used < out.text.size()) {
        const auto n = ::read(fd.get(), out.text.data() + used, out.text.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error(ExitCode::bad_input, "cannot read key file", path, errno);
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    if (used > kMaxKeyFileSize) return bad(subject, too_large);
    out.text.resize(used);
    return {};
}

[[nodiscard]] std::optional<std::string> account_field(bool home) {
    std::array<char, 16384> buffer{};
    struct passwd entry {};
    struct passwd* found = nullptr;
    if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr)
        return std::nullopt;
    const char* field = home ? found->pw_dir : found->pw_name;
    if (field == nullptr || *field == '\0') return std::nullopt;
    return std::string(field);
}

[[nodiscard]] fs::path home_directory() {
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
    return account_field(true).value_or(".");
}

[[nodiscard]] bool exists_here(const fs::path& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0;  // a dangling symlink counts: writing would follow it
}

// Creates the missing directories above `path` with mode 0700, as ssh-keygen does for ~/.ssh.
[[nodiscard]] Result<void> make_parent_directories(const fs::path& path) {
    std::vector<fs::path> missing;
    for (fs::path dir = path.parent_path(); !dir.empty() && !exists_here(dir); dir = dir.parent_path()) {
        missing.push_back(dir);
        if (dir == dir.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0700) != 0) {
            if (errno == EEXIST) continue;
            return io_error(ExitCode::failure, "cannot create directory", *it, errno);
        }
        // The umask must not loosen or tighten the documented mode.
        if (::chmod(it->c_str(), 0700) != 0)
            return io_error(ExitCode::failure, "cannot set the mode of directory", *it, errno);
    }
    return {};
}

[[nodiscard]] bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const auto n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Writes `contents` to an already open, empty file and closes it; errno tells why on failure.
[[nodiscard]] bool fill_and_close(FileDescriptor& fd, std::string_view contents, mode_t mode) {
    return ::fchmod(fd.get(), mode) == 0 && write_all(fd.get(), contents) && ::fsync(fd.get()) == 0 && fd.close();
}

[[nodiscard]] Error already_exists(const fs::path& path) {
    return make_error(ExitCode::bad_input, "'{}' already exists (use --force to overwrite)", path.string());
}

// A new file: O_EXCL, created with its final mode, so it is never readable by others even briefly.
[[nodiscard]] Result<void> create_file(const fs::path& path, std::string_view contents, mode_t mode) {
    FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd.valid()) {
        if (errno == EEXIST) return already_exists(path);
        return io_error(ExitCode::failure, "cannot create", path, errno);
    }
    if (!fill_and_close(fd, contents, mode)) {
        const int saved = errno;
        ::unlink(path.c_str());
        return io_error(ExitCode::failure, "cannot write", path, saved);
    }
    return {};
}

// A replacement: written beside the target (mkostemp makes it 0600) and renamed over it.
[[nodiscard]] Result<void> replace_file(const fs::path& path, std::string_view contents, mode_t mode) {
    std::string temporary = path.string() + ".XXXXXX";
    FileDescriptor fd(::mkostemp(temporary.data(), O_CLOEXEC));
    if (!fd.valid()) return io_error(ExitCode::failure, "cannot create a file beside", path, errno);
    if (!fill_and_close(fd, contents, mode) || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temporary.c_str());
        return io_error(ExitCode::failure, "cannot write", path, saved);
    }
    return {};
}

[[nodiscard]] Result<void> write_file(const fs::path& path, std::string_view contents, mode_t mode, bool overwrite) {
    return overwrite ? replace_file(path, contents, mode) : create_file(path, contents, mode);
}

// Makes a durable rename or create survive a crash (best effort: not every filesystem allows it).
void sync_directory(const fs::path& path) {
    const auto dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) (void)::fsync(fd.get());
}

}  // namespace

fs::path default_key_path() {
    fs::path base;
    // The XDG base directory spec says a relative value is to be ignored.
    if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && fs::path(config).is_absolute()) {
        base = config;
    } else {
        base = home_directory() / ".config";
    }
    return base / "aegis" / "id_ed25519";
}

fs::path public_key_path(const fs::path& secret_path) {
    fs::path out = secret_path;
    out += ".pub";
    return out;
}

std::string default_comment() {
    std::string user = account_field(false).value_or("");
    if (user.empty()) {
        const char* from_env = std::getenv("USER");
        user = from_env != nullptr && *from_env != '\0' ? from_env : "user";
    }
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') return user;
    const auto comment = user + "@" + host.data();
    return is_valid_comment(comment) ? comment : user;
}

bool is_valid_comment(std::string_view comment) {
    if (comment.size() > kMaxCommentSize) return false;
    for (const char c : comment) {
        if (is_control(c)) return false;
    }
    return true;
}

Result<Identity> load_secret_key(const fs::path& path) {
    KeyFile file;
    const WipeOnExit wipe_text(file.text);
    if (auto read = read_key_file(path, file); !read) return read.take_error();
    return parse_secret(file, path);
}

Result<PublicIdentity> load_public_key(const fs::path& path) {
    KeyFile file;
    const WipeOnExit wipe_text(file.text);
    if (auto read = read_key_file(path, file); !read) return read.take_error();
    if (split_line(file.text).type == kSecretKeyType) {
        auto secret = parse_secret(file, path);
        if (!secret) return secret.take_error();
        return PublicIdentity{secret->key.public_key(), std::move(secret->comment)};
    }
    return parse_public(file.text, fmt::format("key file '{}'", path.string()));
}

namespace {

// A key named to pin or trust is read from a public key file only: a secret key file given
// there is a mistake (it would have to be readable wherever the option is written).
Result<PublicIdentity> load_pinned_key(const fs::path& path) {
    KeyFile file;
    const WipeOnExit wipe_text(file.text);
    if (auto read = read_key_file(path, file); !read) return read.take_error();
    if (split_line(file.text).type == kSecretKeyType) {
        return make_error(ExitCode::bad_input, "'{}' is a secret key file; give its public key, '{}'", path.string(),
                          public_key_path(path).string());
    }
    return parse_public(file.text, fmt::format("key file '{}'", path.string()));
}

}  // namespace

Result<PublicIdentity> resolve_public_key(std::string_view path_or_key) {
    const auto given = trim(path_or_key);
    if (given.empty()) return make_error(ExitCode::bad_input, "no public key given");
    const auto line = split_line(given);
    if (line.type == kPublicKeyType) return parse_public_key_line(given);
    if (line.type == kSecretKeyType) {
        return make_error(
            ExitCode::bad_input,
            "a secret key was given where a public key is needed (never put a secret key on a command line)");
    }
    const fs::path path(path_or_key);
    if (exists_here(path)) return load_pinned_key(path);
    if (given.find_first_of(kBlank) == std::string_view::npos) {
        if (const auto bare = crypto::base64_decode(given); bare && bare->size() == crypto::kPublicKeySize) {
            PublicIdentity out;
            std::copy(bare->begin(), bare->end(), out.key.begin());
            return out;
        }
    }
    return load_pinned_key(path);
}

Result<PublicIdentity> parse_public_key_line(std::string_view line) {
    return parse_public(line, "public key line");
}

std::string format_public_key_line(const crypto::PublicKey& key, std::string_view comment) {
    const auto trimmed = trim(comment);
    auto line = fmt::format("{} {}", kPublicKeyType, crypto::base64_encode(key));
    if (!trimmed.empty()) fmt::format_to(std::back_inserter(line), " {}", trimmed);
    return line;
}

Result<std::string> read_public_file(const fs::path& path) {
    KeyFile file;
    if (auto read = read_key_file(path, file); !read) return read.take_error();
    return std::move(file.text);
}

Result<void> write_public_file(const fs::path& path, std::string_view contents, bool overwrite) {
    if (!overwrite && exists_here(path)) return already_exists(path);
    if (auto made = make_parent_directories(path); !made) return made;
    if (auto written = write_file(path, contents, 0644, overwrite); !written) return written;
    sync_directory(path);
    return {};
}

Result<void> write_key_pair(const fs::path& path, const Identity& identity, bool overwrite) {
    if (!is_valid_comment(identity.comment)) {
        return make_error(ExitCode::bad_input, "the comment must be one line of printable text of at most {} bytes",
                          kMaxCommentSize);
    }
    const auto public_path = public_key_path(path);
    if (!overwrite) {
        for (const auto& target : {path, public_path}) {
            if (exists_here(target)) return already_exists(target);
        }
    }
    if (auto made = make_parent_directories(path); !made) return made;

    crypto::Secret<kSecretBlobSize> blob;
    const auto& seed = identity.key.seed();
    const auto& public_key = identity.key.public_key();
    std::copy(seed.data(), seed.data() + seed.size(), blob.data());
    std::copy(public_key.begin(), public_key.end(), blob.data() + crypto::kSeedSize);
    std::string encoded = crypto::base64_encode(ByteView(blob.data(), blob.size()));
    const WipeOnExit wipe_encoded(encoded);
    const auto comment = trim(identity.comment);
    std::string secret_text;
    const WipeOnExit wipe_secret_text(secret_text);
    // Reserved up front so that appending never reallocates and leaves an unwiped copy behind.
    secret_text.reserve(kSecretKeyType.size() + encoded.size() + comment.size() + 3);
    secret_text.append(kSecretKeyType).append(" ").append(encoded);
    if (!comment.empty()) secret_text.append(" ").append(comment);
    secret_text.append("\n");

    if (auto written = write_file(path, secret_text, 0600, overwrite); !written) return written;
    if (auto written = write_file(public_path, format_public_key_line(public_key, comment) + "\n", 0644, overwrite);
        !written) {
        // Do not leave half a new pair behind.
        if (!overwrite) ::unlink(path.c_str());
        return written;
    }
    sync_directory(path);
    return {};
}

}  // namespace aegis::identity
