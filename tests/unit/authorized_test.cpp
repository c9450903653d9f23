// The gateway's authorized-keys file: good and bad lines, warnings with line numbers,
// narrowing options, comments, duplicates.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/primitives.h"
#include "gateway/authorized_keys.h"

using aegis::Role;
using aegis::gateway::AuthorizedKeys;
using aegis::gateway::load_authorized_keys;
using aegis::gateway::parse_authorized_keys;
using aegis::gateway::parse_authorized_line;

namespace {

aegis::crypto::PublicKey new_key() {
    return aegis::crypto::SigningKey::generate().public_key();
}

std::string key_text(const aegis::crypto::PublicKey& key) {
    return "aegis-ed25519 " + aegis::crypto::base64_encode(key);
}

bool mentions(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a well-formed line gives role, id, key and comment", "[authorized]") {
    const auto key = new_key();
    auto parsed = parse_authorized_line("role=agent,id=host42 " + key_text(key) + " web server one");
    REQUIRE(parsed.ok());
    CHECK(parsed->role == Role::agent);
    CHECK(parsed->id == "host42");
    CHECK(parsed->key == key);
    CHECK(parsed->comment == "web server one");
    CHECK_FALSE(parsed->publish_narrowing.has_value());
    CHECK_FALSE(parsed->subscribe_narrowing.has_value());
}

TEST_CASE("options may come in any order and narrow publish and subscribe", "[authorized]") {
    const auto key = new_key();
    auto parsed =
        parse_authorized_line("sub=agent.*.anomalies,id=soc,pub=backend.all.policies,role=backend " + key_text(key));
    REQUIRE(parsed.ok());
    CHECK(parsed->role == Role::backend);
    CHECK(parsed->id == "soc");
    CHECK(parsed->publish_narrowing == std::optional<std::string>("backend.all.policies"));
    CHECK(parsed->subscribe_narrowing == std::optional<std::string>("agent.*.anomalies"));
    CHECK(parsed->comment.empty());
}

TEST_CASE("bad lines are refused with what is wrong", "[authorized]") {
    const auto key = key_text(new_key());
    struct Case {
        std::string line;
        std::string says;
    };
    const Case cases[] = {
        {key, "missing options"},
        {"role=agent,id=host42", "missing key"},
        {"id=host42 " + key, "missing role"},
        {"role=agent " + key, "missing id"},
        {"role=robot,id=host42 " + key, "unknown role 'robot'"},
        {"role=agent,id=host.42 " + key, "host.42"},
        {"role=agent,id=all " + key, "all"},
        {"role=agent,id= " + key, ""},
        {"role=agent,id=host42,color=red " + key, "unknown option 'color'"},
        {"role=agent,id=host42,role=backend " + key, "given twice"},
        {"role=agent,id=host42,pub " + key, "has no value"},
        {"role=agent,,id=host42 " + key, "empty option"},
        {"role=agent,id=host42,pub=agent..x " + key, "pub="},
        {"role=agent,id=host42,sub=a.>.b " + key, "sub="},
        {"role=agent,id=host42 aegis-ed25519 not-base64!", ""},
        {"role=agent,id=host42 aegis-ed25519 AAAA", ""},
        {"role=agent,id=host42 ssh-ed25519 " + aegis::crypto::base64_encode(new_key()), ""},
    };
    for (const auto& c : cases) {
        INFO(c.line);
        auto parsed = parse_authorized_line(c.line);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().exit == aegis::ExitCode::bad_input);
        CHECK(mentions(parsed.error().message, c.says));
    }
}

TEST_CASE("comments and blank lines are skipped; bad lines are errors with their line number", "[authorized]") {
    const auto a = new_key(), b = new_key(), c = new_key();
    const std::string text =
        "# the fleet\n"
        "\n"
        "role=agent,id=host1 " +
        key_text(a) +
        " one\n"
        "   # indented comment\n"
        "role=agent,id=host2 aegis-ed25519 garbage\n"
        "\t\r\n"
        "role=wizard,id=host3 " +
        key_text(b) +
        "\n"
        "role=backend,id=soc " +
        key_text(c) + "\r\n";
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.size() == 2);
    REQUIRE(keys.find(a) != nullptr);
    CHECK(keys.find(a)->id == "host1");
    CHECK(keys.find(a)->line == 3);
    CHECK(keys.find(b) == nullptr);
    REQUIRE(keys.find(c) != nullptr);
    CHECK(keys.find(c)->role == Role::backend);
    CHECK(keys.find(c)->line == 8);
    CHECK(keys.warnings.empty());
    REQUIRE(keys.errors.size() == 2);
    CHECK(keys.errors[0].rfind("auth:5: ", 0) == 0);
    CHECK(keys.errors[1].rfind("auth:7: ", 0) == 0);
    CHECK(mentions(keys.errors[1], "unknown role 'wizard'"));
}

TEST_CASE("the last line may lack a newline; an empty file authorizes nobody", "[authorized]") {
    const auto a = new_key();
    CHECK(parse_authorized_keys("role=agent,id=h " + key_text(a), "f").find(a) != nullptr);
    const auto empty = parse_authorized_keys("", "f");
    CHECK(empty.size() == 0);
    CHECK(empty.warnings.empty());
    CHECK(empty.errors.empty());
}

TEST_CASE("a key listed twice: the later line wins, with a warning", "[authorized]") {
    const auto a = new_key();
    const std::string text = "role=agent,id=old " + key_text(a) + "\n" + "role=backend,id=new " + key_text(a) + "\n";
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.size() == 1);
    REQUIRE(keys.find(a) != nullptr);
    CHECK(keys.find(a)->id == "new");
    CHECK(keys.find(a)->role == Role::backend);
    REQUIRE(keys.warnings.size() == 1);
    CHECK(keys.warnings[0].rfind("auth:2: ", 0) == 0);
    CHECK(mentions(keys.warnings[0], "line 1"));
    CHECK(mentions(keys.warnings[0], aegis::crypto::fingerprint(a)));
}

TEST_CASE("an id held by two keys with the same grant: both apply, a rollover warning", "[authorized]") {
    const auto a = new_key(), b = new_key();
    const std::string text = "role=agent,id=host42,pub=agent.host42.> " + key_text(a) + "\n" +
                             "role=agent,id=host42,pub=agent.host42.> " + key_text(b) + "\n";
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.errors.empty());
    CHECK(keys.size() == 2);
    REQUIRE(keys.find(a) != nullptr);
    REQUIRE(keys.find(b) != nullptr);
    CHECK(keys.find(a)->id == "host42");
    CHECK(keys.find(b)->id == "host42");
    REQUIRE(keys.warnings.size() == 1);
    CHECK(keys.warnings[0].rfind("auth:2: ", 0) == 0);
    CHECK(mentions(keys.warnings[0], "id 'host42' is also held by the key on line 1 (a key rollover"));
}

TEST_CASE("an id already held by another key with another grant: the second line is an error", "[authorized]") {
    const auto a = new_key(), b = new_key(), c = new_key();
    const std::string text = "role=agent,id=host42 " + key_text(a) + "\n" + "role=backend,id=host42 " + key_text(b) +
                             "\n" + "role=agent,id=host42,sub=agent.host42.> " + key_text(c) + "\n";
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.size() == 1);
    CHECK(keys.find(a) != nullptr);
    CHECK(keys.find(b) == nullptr);
    CHECK(keys.find(c) == nullptr);
    CHECK(keys.warnings.empty());
    REQUIRE(keys.errors.size() == 2);
    CHECK(keys.errors[0].rfind("auth:2: ", 0) == 0);
    CHECK(mentions(keys.errors[0], "id 'host42' already belongs to another key (line 1) with another role"));
    CHECK(keys.errors[1].rfind("auth:3: ", 0) == 0);
}

TEST_CASE("an id freed by a key listed again under another id can be taken by a new key", "[authorized]") {
    const auto a = new_key(), b = new_key();
    const std::string text = "role=agent,id=old " + key_text(a) + "\n" + "role=agent,id=new " + key_text(a) + "\n" +
                             "role=agent,id=old " + key_text(b) + "\n" + "role=backend,id=new " + key_text(b) + "\n";
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.size() == 2);
    REQUIRE(keys.find(a) != nullptr);
    REQUIRE(keys.find(b) != nullptr);
    CHECK(keys.find(a)->id == "new");
    CHECK(keys.find(b)->id == "old");  // line 4 refused: "new" is a's
    REQUIRE(keys.warnings.size() == 1);
    CHECK(mentions(keys.warnings[0], "this line replaces it"));
    REQUIRE(keys.errors.size() == 1);
    CHECK(mentions(keys.errors[0], "auth:4: id 'new' already belongs to another key (line 2)"));
}

TEST_CASE("ten thousand identities load, and a duplicate id after them is still found", "[authorized]") {
    std::string text;
    std::vector<aegis::crypto::PublicKey> keys_made;
    for (int i = 0; i < 10000; ++i) {
        keys_made.push_back(new_key());
        text += "role=agent,id=host" + std::to_string(i) + " " + key_text(keys_made.back()) + "\n";
    }
    text += "role=backend,id=host5 " + key_text(new_key()) + "\n";  // a conflicting id at the end is still found
    const auto keys = parse_authorized_keys(text, "auth");
    CHECK(keys.size() == 10000);
    CHECK(keys.find(keys_made[9999])->id == "host9999");
    REQUIRE(keys.errors.size() == 1);
    CHECK(mentions(keys.errors[0], "auth:10001: id 'host5' already belongs to another key (line 6)"));
}

TEST_CASE("identities() lists entries in file order", "[authorized]") {
    const auto a = new_key(), b = new_key(), c = new_key();
    const std::string text = "role=agent,id=z " + key_text(a) + "\nrole=agent,id=y " + key_text(b) +
                             "\nrole=agent,id=x " + key_text(c) + "\n";
    const auto keys = parse_authorized_keys(text, "f");
    const auto listed = keys.identities();  // points into `keys`
    REQUIRE(listed.size() == 3);
    CHECK(listed[0]->id == "z");
    CHECK(listed[1]->id == "y");
    CHECK(listed[2]->id == "x");
}

TEST_CASE("same_grant tells a reload whether an identity changed", "[authorized]") {
    const auto key = key_text(new_key());
    auto plain = parse_authorized_line("role=agent,id=h " + key);
    auto again = parse_authorized_line("id=h,role=agent " + key + " another comment");
    auto narrowed = parse_authorized_line("role=agent,id=h,pub=agent.h.logs " + key);
    auto renamed = parse_authorized_line("role=agent,id=g " + key);
    REQUIRE((plain.ok() && again.ok() && narrowed.ok() && renamed.ok()));
    CHECK(plain->same_grant(again.value()));
    CHECK_FALSE(plain->same_grant(narrowed.value()));
    CHECK_FALSE(plain->same_grant(renamed.value()));
}

TEST_CASE("loading: a missing file or one with a bad line is bad input, naming every bad line", "[authorized]") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("aegis-authorized-" + aegis::crypto::hex_encode(new_key()).substr(0, 12));
    std::filesystem::create_directories(dir);
    const auto missing = load_authorized_keys(dir / "nope");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().exit == aegis::ExitCode::bad_input);
    CHECK(mentions(missing.error().message, "nope"));

    const auto as_dir = load_authorized_keys(dir);
    REQUIRE_FALSE(as_dir.ok());
    CHECK(as_dir.error().exit == aegis::ExitCode::bad_input);

    const auto a = new_key();
    const auto file = dir / "authorized";
    std::ofstream(file) << "bogus line\nrole=agent,id=h " << key_text(a) << "\nrole=backend,id=h "
                        << key_text(new_key()) << "\n";
    const auto refused = load_authorized_keys(file);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().exit == aegis::ExitCode::bad_input);
    CHECK(mentions(refused.error().message, "has 2 bad lines, none applied"));
    CHECK(mentions(refused.error().message, file.string() + ":1: "));
    CHECK(mentions(refused.error().message, file.string() + ":3: "));
    std::ofstream(file) << "role=agent,id=h " << key_text(a) << "\nrole=agent,id=g " << key_text(a) << "\n";
    const auto loaded = load_authorized_keys(file);
    REQUIRE(loaded.ok());
    CHECK(loaded->find(a) != nullptr);
    REQUIRE(loaded->warnings.size() == 1);
    CHECK(loaded->warnings[0].rfind(file.string() + ":2: ", 0) == 0);
    std::filesystem::remove_all(dir);
}
