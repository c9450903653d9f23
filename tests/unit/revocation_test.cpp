// The gateway's revocation list (--revoked): keys and serials, and a file with a bad line
// refused whole.

#include <catch2/catch.hpp>

#include "gateway/revocation_list.h"
#include "identity/keyfile.h"

using namespace aegis;

TEST_CASE("a revocation list refuses its keys and serials, nothing else", "[revocation]") {
    const auto old_key = crypto::SigningKey::generate().public_key();
    const auto new_key = crypto::SigningKey::generate().public_key();
    const std::string text = "# rolled over\n\n" + identity::format_public_key_line(old_key, "old") +
                             "\n  serial 77  \nserial 18446744073709551615\n";
    const auto list = gateway::parse_revocation_list(text, "revoked");
    REQUIRE(list);
    CHECK(list->size() == 3);
    CHECK_THAT(list->revokes(old_key, std::nullopt).value_or(""), Catch::Contains("is in the revocation list"));
    CHECK_FALSE(list->revokes(new_key, std::nullopt));
    identity::Certificate certificate;
    certificate.serial = 77;
    CHECK_THAT(list->revokes(new_key, certificate).value_or(""), Catch::Contains("certificate serial 77"));
    certificate.serial = 78;
    CHECK_FALSE(list->revokes(new_key, certificate));
    CHECK(gateway::parse_revocation_list("", "revoked")->empty());
}

TEST_CASE("a revocation list with any bad line is refused, naming every one", "[revocation]") {
    const auto key = crypto::SigningKey::generate().public_key();
    const std::string text = "serial\n" + identity::format_public_key_line(key, "") +
                             "\nserial -1\nserial 18446744073709551616\nssh-ed25519 AAAA\nserialx 5\n";
    const auto list = gateway::parse_revocation_list(text, "revoked");
    REQUIRE_FALSE(list);
    CHECK(list.error().exit == ExitCode::bad_input);
    const auto& message = list.error().message;
    CHECK_THAT(message, Catch::Contains("has 5 bad lines, none applied"));
    for (const auto* line : {"revoked:1:", "revoked:3:", "revoked:4:", "revoked:5:", "revoked:6:"})
        CHECK_THAT(message, Catch::Contains(line));
    CHECK_THAT(message, !Catch::Contains("revoked:2:"));
}
