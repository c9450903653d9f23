#include "identity/keyfile.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "crypto/primitives.h"

using namespace aegis;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    TempDir() {
        Bytes nonce(8);
        crypto::random_bytes(nonce);
        path_ = fs::temp_directory_path() / ("aegis-keyfile-test-" + crypto::hex_encode(nonce));
        fs::create_directory(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Sets or clears an environment variable for one scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

unsigned mode_of(const fs::path& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& path, const std::string& text,
                fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    fs::permissions(path, mode);
}

identity::Identity make_identity(std::string comment) {
    return identity::Identity{crypto::SigningKey::generate(), std::move(comment)};
}

std::string public_line_of(const crypto::PublicKey& key) {
    return identity::format_public_key_line(key, "");
}

// A key file text made by hand: seed || public key, base64.
std::string secret_line(const crypto::SigningKey& key, const crypto::PublicKey& stored_public) {
    Bytes blob(key.seed().data(), key.seed().data() + key.seed().size());
    blob.insert(blob.end(), stored_public.begin(), stored_public.end());
    return "aegis-ed25519-secret " + crypto::base64_encode(blob) + " test\n";
}

}  // namespace

TEST_CASE("a written key pair loads back with its modes", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "id_ed25519";
    const auto made = make_identity("alice@host with spaces");
    REQUIRE(identity::write_key_pair(path, made, false).ok());

    CHECK(mode_of(path) == 0600);
    CHECK(mode_of(identity::public_key_path(path)) == 0644);
    CHECK(identity::public_key_path(path) == dir.path() / "id_ed25519.pub");
    CHECK(read_text(identity::public_key_path(path)) ==
          identity::format_public_key_line(made.key.public_key(), made.comment) + "\n");

    const auto secret_text = read_text(path);
    CHECK(secret_text.starts_with("aegis-ed25519-secret "));
    CHECK(secret_text.ends_with(" alice@host with spaces\n"));
    CHECK(std::count(secret_text.begin(), secret_text.end(), '\n') == 1);

    const auto loaded = identity::load_secret_key(path);
    REQUIRE(loaded.ok());
    CHECK(loaded->key.public_key() == made.key.public_key());
    CHECK(crypto::constant_time_equal(loaded->key.seed().view(), made.key.seed().view()));
    CHECK(loaded->comment == "alice@host with spaces");

    const auto from_public = identity::load_public_key(identity::public_key_path(path));
    REQUIRE(from_public.ok());
    CHECK(from_public->key == made.key.public_key());
    CHECK(from_public->comment == "alice@host with spaces");

    const auto from_secret = identity::load_public_key(path);
    REQUIRE(from_secret.ok());
    CHECK(from_secret->key == made.key.public_key());
    CHECK(from_secret->comment == "alice@host with spaces");
}

TEST_CASE("an empty comment is stored without a trailing field", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "id";
    const auto made = make_identity("");
    REQUIRE(identity::write_key_pair(path, made, false).ok());
    CHECK(read_text(identity::public_key_path(path)) == public_line_of(made.key.public_key()) + "\n");
    const auto loaded = identity::load_secret_key(path);
    REQUIRE(loaded.ok());
    CHECK(loaded->comment.empty());
}

TEST_CASE("missing parent directories are made 0700, whatever the umask", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "a" / "b" / "id";
    const mode_t old_umask = ::umask(0);
    const auto written = identity::write_key_pair(path, make_identity("c"), false);
    ::umask(old_umask);
    REQUIRE(written.ok());
    CHECK(mode_of(dir.path() / "a") == 0700);
    CHECK(mode_of(dir.path() / "a" / "b") == 0700);
    CHECK(mode_of(path) == 0600);
    CHECK(mode_of(identity::public_key_path(path)) == 0644);
}

TEST_CASE("an existing key or .pub is kept unless overwriting is asked for", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "id";
    const auto first = make_identity("first");
    REQUIRE(identity::write_key_pair(path, first, false).ok());
    const auto before = read_text(path);

    const auto refused = identity::write_key_pair(path, make_identity("second"), false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().exit == ExitCode::bad_input);
    CHECK_THAT(refused.error().message, Catch::Contains(path.string()) && Catch::Contains("already exists"));
    CHECK(read_text(path) == before);

    SECTION("a lone .pub also blocks") {
        fs::remove(path);
        const auto blocked = identity::write_key_pair(path, make_identity("third"), false);
        REQUIRE_FALSE(blocked.ok());
        CHECK_THAT(blocked.error().message, Catch::Contains(".pub") && Catch::Contains("already exists"));
        CHECK_FALSE(fs::exists(path));
    }
    SECTION("overwrite replaces both files and keeps the modes") {
        const auto second = make_identity("second");
        REQUIRE(identity::write_key_pair(path, second, true).ok());
        CHECK(mode_of(path) == 0600);
        CHECK(mode_of(identity::public_key_path(path)) == 0644);
        CHECK(identity::load_secret_key(path)->key.public_key() == second.key.public_key());
        CHECK(identity::load_public_key(identity::public_key_path(path))->comment == "second");
        // No temporary file is left beside the pair.
        CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
    }
}

TEST_CASE("a comment that would break the one-line format is refused", "[identity]") {
    const TempDir dir;
    CHECK(identity::is_valid_comment(""));
    CHECK(identity::is_valid_comment("alice@example.org"));
    CHECK(identity::is_valid_comment("build agent 7 (eu-west) \xc3\xa9t\xc3\xa9"));
    CHECK_FALSE(identity::is_valid_comment("two\nlines"));
    CHECK_FALSE(identity::is_valid_comment("carriage\rreturn"));
    CHECK_FALSE(identity::is_valid_comment(std::string("nul\0byte", 8)));
    CHECK_FALSE(identity::is_valid_comment(std::string(2000, 'x')));

    const auto refused = identity::write_key_pair(dir.path() / "id", make_identity("a\nb"), false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().exit == ExitCode::bad_input);
    CHECK_FALSE(fs::exists(dir.path() / "id"));
}

TEST_CASE("a secret key readable by group or others is refused", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "id";
    REQUIRE(identity::write_key_pair(path, make_identity("c"), false).ok());

    for (const unsigned mode : {0640u, 0604u, 0644u, 0660u, 0610u, 0601u, 0620u, 0602u, 0700u | 0070u}) {
        CAPTURE(mode);
        fs::permissions(path, static_cast<fs::perms>(mode));
        const auto expected = fmt::format("permissions {:04o} for '{}' are too open", mode, path.string());
        const auto secret = identity::load_secret_key(path);
        const auto from_secret = identity::load_public_key(path);
        REQUIRE_FALSE(secret.ok());
        REQUIRE_FALSE(from_secret.ok());
        for (const auto* result : {&secret.error(), &from_secret.error()}) {
            CHECK(result->exit == ExitCode::bad_input);
            CHECK_THAT(result->message, Catch::Contains(expected) && Catch::Contains("chmod 600"));
        }
    }
    fs::permissions(path, fs::perms::owner_read);
    CHECK(identity::load_secret_key(path).ok());
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::owner_exec);
    CHECK(identity::load_secret_key(path).ok());
}

TEST_CASE("every broken secret key file is refused with bad_input, naming the file", "[identity]") {
    const TempDir dir;
    const auto key = crypto::SigningKey::generate();
    const auto good = secret_line(key, key.public_key());
    auto other_public = key.public_key();
    other_public[0] ^= 1;
    const Bytes short_blob(48, 7);

    struct Case {
        const char* name;
        std::string text;
        const char* expected;
    };
    const std::vector<Case> cases{
        {"empty", "", "is empty"},
        {"blank", " \n\n", "is empty"},
        {"type only", "aegis-ed25519-secret\n", "truncated"},
        {"cut in the key", good.substr(0, 40), "truncated or corrupt"},
        {"cut before the comment", good.substr(0, 21 + 44) + "\n", "truncated or corrupt"},
        {"too short a key", "aegis-ed25519-secret " + crypto::base64_encode(short_blob) + "\n", "48 bytes, not 64"},
        {"garbage", "hello world, this is not a key\n", "is not an Aegis key"},
        {"binary",
         std::string("\x7f"
                     "ELF\x02\x01\x01\0\0\0\0",
                     12),
         "binary"},
        {"nul inside", "aegis-ed25519-secret AAAA" + std::string(1, '\0') + "\n", "binary"},
        {"ssh public key",
         "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n", "ssh key"},
        {"openssh private key",
         "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
         "OpenSSH private key"},
        {"public key", public_line_of(key.public_key()) + "\n", "is an Aegis public key; a secret key is needed"},
        {"mismatched halves", secret_line(key, other_public), "does not match"},
        {"two lines", good + good, "more than one line"},
        {"bad base64", "aegis-ed25519-secret !!!!notbase64!!!! c\n", "not valid base64"},
        {"oversized", std::string(identity::kMaxKeyFileSize + 1, 'a'), "too large"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const auto path = dir.path() / "broken";
        write_text(path, c.text);
        std::optional<Result<identity::Identity>> loaded;
        REQUIRE_NOTHROW(loaded.emplace(identity::load_secret_key(path)));
        REQUIRE_FALSE(loaded->ok());
        CHECK(loaded->error().exit == ExitCode::bad_input);
        CHECK_THAT(loaded->error().message, Catch::Contains(path.string()) && Catch::Contains(c.expected));
        CHECK(loaded->error().message.find('\n') == std::string::npos);
    }

    SECTION("a well-formed file loads, with surrounding blanks ignored") {
        write_text(dir.path() / "fine", "  " + good + "\n\n");
        const auto loaded = identity::load_secret_key(dir.path() / "fine");
        REQUIRE(loaded.ok());
        CHECK(loaded->key.public_key() == key.public_key());
        CHECK(loaded->comment == "test");
    }
}

TEST_CASE("paths that are not key files are refused with bad_input", "[identity]") {
    const TempDir dir;
    const auto missing = identity::load_secret_key(dir.path() / "absent");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().exit == ExitCode::bad_input);
    CHECK_THAT(missing.error().message, Catch::Contains("absent") && Catch::Contains("No such file"));

    const auto directory = identity::load_public_key(dir.path());
    REQUIRE_FALSE(directory.ok());
    CHECK(directory.error().exit == ExitCode::bad_input);
    CHECK_THAT(directory.error().message, Catch::Contains("is a directory"));

    const auto fifo = dir.path() / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const auto from_fifo = identity::load_secret_key(fifo);  // must not block waiting for a writer
    REQUIRE_FALSE(from_fifo.ok());
    CHECK_THAT(from_fifo.error().message, Catch::Contains("not a regular file"));
}

TEST_CASE("broken public key files are refused with bad_input", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "id.pub";
    for (const std::string& text :
         std::vector<std::string>{"", "aegis-ed25519\n", "aegis-ed25519 AAAA\n", "ssh-ed25519 AAAA x\n", "junk\n",
                                  std::string("\x89PNG\r\n\x1a\n", 8)}) {
        CAPTURE(text);
        write_text(path, text,
                   fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
        const auto loaded = identity::load_public_key(path);
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().exit == ExitCode::bad_input);
        CHECK_THAT(loaded.error().message, Catch::Contains(path.string()));
    }
}

TEST_CASE("parse_public_key_line accepts Aegis public key lines and nothing else", "[identity]") {
    const auto key = crypto::SigningKey::generate().public_key();
    const auto encoded = crypto::base64_encode(key);

    struct Accepted {
        std::string line;
        std::string comment;
    };
    const std::vector<Accepted> accepted{
        {"aegis-ed25519 " + encoded, ""},
        {"aegis-ed25519 " + encoded + " alice@host", "alice@host"},
        {"aegis-ed25519 " + encoded + " build agent 7  \n", "build agent 7"},
        {"  aegis-ed25519\t" + encoded + "\tx\r\n", "x"},
    };
    for (const auto& a : accepted) {
        CAPTURE(a.line);
        const auto parsed = identity::parse_public_key_line(a.line);
        REQUIRE(parsed.ok());
        CHECK(parsed->key == key);
        CHECK(parsed->comment == a.comment);
    }

    const std::vector<std::string> rejected{
        "",
        "   \n",
        "aegis-ed25519",
        "aegis-ed25519 ",
        "aegis-ed25519 !!!",
        "aegis-ed25519 " + encoded.substr(0, 43),                       // padding stripped
        "aegis-ed25519 " + crypto::base64_encode(Bytes(31, 1)),         // too short
        "aegis-ed25519 " + crypto::base64_encode(Bytes(33, 1)),         // too long
        "aegis-ed25519-secret " + crypto::base64_encode(Bytes(64, 1)),  // a secret key
        "ssh-ed25519 " + encoded + " user@host",                        // an ssh key
        "AEGIS-ED25519 " + encoded,                                     // types are case-sensitive
        encoded,                                                        // bare key is not a line
        "aegis-ed25519 " + encoded + "\naegis-ed25519 " + encoded,      // two lines
        "aegis-ed25519 " + encoded + " bell\x07",                       // control character
    };
    for (const auto& line : rejected) {
        CAPTURE(line);
        const auto parsed = identity::parse_public_key_line(line);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().exit == ExitCode::bad_input);
    }
}

TEST_CASE("format_public_key_line and parse_public_key_line round-trip", "[identity]") {
    const auto key = crypto::SigningKey::generate().public_key();
    const auto line = identity::format_public_key_line(key, "ops team");
    CHECK(line == "aegis-ed25519 " + crypto::base64_encode(key) + " ops team");
    const auto parsed = identity::parse_public_key_line(line);
    REQUIRE(parsed.ok());
    CHECK(parsed->key == key);
    CHECK(parsed->comment == "ops team");
    CHECK(identity::format_public_key_line(key, "") == "aegis-ed25519 " + crypto::base64_encode(key));
}

TEST_CASE("resolve_public_key takes a public key file, a public key line or a bare key", "[identity]") {
    const TempDir dir;
    const auto path = dir.path() / "backend";
    const auto made = make_identity("backend-1");
    REQUIRE(identity::write_key_pair(path, made, false).ok());
    const auto& key = made.key.public_key();

    for (const std::string& given : std::vector<std::string>{
             identity::public_key_path(path).string(), identity::format_public_key_line(key, "backend-1"),
             identity::format_public_key_line(key, "backend-1") + "\n"}) {
        CAPTURE(given);
        const auto resolved = identity::resolve_public_key(given);
        REQUIRE(resolved.ok());
        CHECK(resolved->key == key);
        CHECK(resolved->comment == "backend-1");
    }
    // The secret key file is refused, naming the public key file to give instead.
    const auto secret = identity::resolve_public_key(path.string());
    REQUIRE_FALSE(secret.ok());
    CHECK(secret.error().exit == ExitCode::bad_input);
    CHECK(secret.error().message.find("secret key") != std::string::npos);
    CHECK(secret.error().message.find(identity::public_key_path(path).string()) != std::string::npos);

    const auto bare = identity::resolve_public_key(crypto::base64_encode(key));
    REQUIRE(bare.ok());
    CHECK(bare->key == key);
    CHECK(bare->comment.empty());

    for (const std::string& given : std::vector<std::string>{
             std::string(""), (dir.path() / "absent.pub").string(), crypto::base64_encode(Bytes(31, 2)),
             std::string("not a key"), "aegis-ed25519-secret " + crypto::base64_encode(Bytes(64, 3))}) {
        CAPTURE(given);
        const auto resolved = identity::resolve_public_key(given);
        REQUIRE_FALSE(resolved.ok());
        CHECK(resolved.error().exit == ExitCode::bad_input);
    }
}

TEST_CASE("the default key path follows XDG_CONFIG_HOME, else HOME", "[identity]") {
    {
        const ScopedEnv xdg("XDG_CONFIG_HOME", "/srv/config");
        CHECK(identity::default_key_path() == fs::path("/srv/config/aegis/id_ed25519"));
    }
    {
        const ScopedEnv xdg("XDG_CONFIG_HOME", nullptr);
        const ScopedEnv home("HOME", "/home/alice");
        CHECK(identity::default_key_path() == fs::path("/home/alice/.config/aegis/id_ed25519"));
    }
    {
        const ScopedEnv xdg("XDG_CONFIG_HOME", "relative/dir");  // the XDG spec says to ignore it
        const ScopedEnv home("HOME", "/home/bob");
        CHECK(identity::default_key_path() == fs::path("/home/bob/.config/aegis/id_ed25519"));
    }
    {
        const ScopedEnv xdg("XDG_CONFIG_HOME", "");
        const ScopedEnv home("HOME", "/home/carol");
        CHECK(identity::default_key_path() == fs::path("/home/carol/.config/aegis/id_ed25519"));
    }
}

TEST_CASE("the default comment is user@host and valid", "[identity]") {
    const auto comment = identity::default_comment();
    CHECK_FALSE(comment.empty());
    CHECK(identity::is_valid_comment(comment));
    CHECK(comment.find(' ') == std::string::npos);
}
