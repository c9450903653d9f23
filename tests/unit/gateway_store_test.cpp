// The gateway's state file: identities, tokens and per-identity inboxes on real files in a
// temporary directory, reopened the way a restarted gateway reopens them.
#include "store/gateway_store.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "store/state_database.h"

namespace {

using aegis::store::GatewayLimits;
using aegis::store::GatewayStore;
using aegis::store::GatewayToken;

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-gateway-store-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

aegis::crypto::PublicKey key_of(std::uint8_t seed) {
    aegis::crypto::PublicKey key{};
    key.fill(seed);
    return key;
}

aegis::ByteView text(const std::string& value) {
    return aegis::as_bytes(value);
}

std::unique_ptr<GatewayStore> open_store(const std::filesystem::path& file, GatewayLimits limits = {}) {
    auto opened = GatewayStore::open(file, limits);
    REQUIRE(opened.ok());
    return std::move(opened.value());
}

std::string payload(const aegis::store::StoredBatch& batch) {
    return std::string(aegis::as_text(batch.batch));
}

}  // namespace

TEST_CASE("gateway store: inbox sequences, acknowledgement and reopening", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    const auto host = key_of(2);
    {
        auto store = open_store(file);
        REQUIRE(store->save_patterns(soc, "soc", {"agent.>", "backend.all.>"}).ok());
        REQUIRE(store->save_patterns(host, "host42", {"backend.host42.>"}).ok());
        for (const auto* body : {"one", "two", "three"}) {
            auto appended = store->append(soc, "agent.host42.logs", text(body), 1, 1000);
            REQUIRE(appended.ok());
            CHECK(appended->dropped == 0);
        }
        auto other = store->append(host, "backend.host42.policies", text("deny"), 2, 1000);
        REQUIRE(other.ok());
        CHECK(other->sequence == 1);  // sequences are per identity
        CHECK(store->find(soc)->last_sequence == 3);
        CHECK(store->find(soc)->pending == 3);
        CHECK(store->find(host)->pending == 2);

        auto all = store->read_after(soc, 0, 10);
        REQUIRE(all.ok());
        REQUIRE(all->size() == 3);
        CHECK(payload(all->at(0)) == "one");
        CHECK(all->at(2).sequence == 3);
        CHECK(all->at(1).channel == "agent.host42.logs");

        REQUIRE(store->acknowledge(soc, 2).ok());
        CHECK(store->find(soc)->acknowledged == 2);
        CHECK(store->find(soc)->pending == 1);
        REQUIRE(store->acknowledge(soc, 1).ok());  // never goes back
        CHECK(store->find(soc)->acknowledged == 2);
        REQUIRE(store->acknowledge(soc, 99).ok());  // clamped to what was handed out
        CHECK(store->find(soc)->acknowledged == 3);
        CHECK(store->find(soc)->pending == 0);
        auto rest = store->append(soc, "agent.host42.logs", text("four"), 1, 1000);
        REQUIRE(rest.ok());
        CHECK(rest->sequence == 4);
    }
    // A restart reads everything back.
    auto store = open_store(file);
    const auto* state = store->find(soc);
    REQUIRE(state != nullptr);
    CHECK(state->id == "soc");
    CHECK(state->patterns == std::vector<std::string>{"agent.>", "backend.all.>"});
    CHECK(state->last_sequence == 4);
    CHECK(state->acknowledged == 3);
    CHECK(state->pending == 1);
    auto after = store->read_after(soc, state->acknowledged, 10);
    REQUIRE(after.ok());
    REQUIRE(after->size() == 1);
    CHECK(payload(after->at(0)) == "four");
    CHECK(store->find(host)->pending == 2);
}

TEST_CASE("gateway store: a transaction groups writes and a rollback leaves nothing", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    {
        auto store = open_store(file);
        REQUIRE(store->save_patterns(soc, "soc", {"agent.>"}).ok());
        {
            auto transaction = store->begin();
            REQUIRE(transaction.ok());
            REQUIRE(store->append(soc, "agent.a.b", text("x"), 1, 1).ok());
            REQUIRE(store->append(soc, "agent.a.b", text("y"), 1, 1).ok());
            REQUIRE(transaction->commit().ok());
        }
        {
            auto transaction = store->begin();
            REQUIRE(transaction.ok());
            REQUIRE(store->append(soc, "agent.a.b", text("lost"), 1, 1).ok());
        }  // rolled back
        REQUIRE(store->reload().ok());
        CHECK(store->find(soc)->last_sequence == 2);
    }
    auto store = open_store(file);
    CHECK(store->find(soc)->pending == 2);
}

TEST_CASE("gateway store: reads after an append, from memory or from the file, give what the file holds",
          "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    GatewayLimits limits;
    limits.max_messages = 1000;
    auto store = open_store(file, limits);
    REQUIRE(store->save_patterns(soc, "soc", {"agent.>"}).ok());
    const auto payloads = [](const std::vector<aegis::store::StoredBatch>& batches) {
        std::vector<std::string> out;
        for (const auto& batch : batches) out.push_back(payload(batch));
        return out;
    };
    // What a fresh store (the file alone) gives for the same read.
    const auto from_file = [&](std::uint64_t after, std::size_t limit) {
        auto other = open_store(file, limits);
        auto read = other->read_after(soc, after, limit);
        REQUIRE(read.ok());
        return payloads(*read);
    };
    const auto read = [&](std::uint64_t after, std::size_t limit) {
        auto got = store->read_after(soc, after, limit);
        REQUIRE(got.ok());
        return payloads(*got);
    };
    const std::size_t total = GatewayStore::kRecentPerInbox + 6;  // more than memory keeps
    for (std::size_t n = 1; n <= total; ++n)
        REQUIRE(store->append(soc, "agent.a.b", text(std::to_string(n)), 1, 1).ok());
    for (const std::uint64_t after : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{6}, std::uint64_t{7},
                                      std::uint64_t{total - 1}, std::uint64_t{total}}) {
        CHECK(read(after, 10) == from_file(after, 10));
    }
    CHECK(read(total - 2, 10) == std::vector<std::string>{std::to_string(total - 1), std::to_string(total)});
    CHECK(read(total - 5, 2).size() == 2);

    REQUIRE(store->acknowledge(soc, total - 2).ok());
    CHECK(read(total - 3, 10) == from_file(total - 3, 10));
    CHECK(read(0, 10) == std::vector<std::string>{std::to_string(total - 1), std::to_string(total)});

    // An append a rollback took back is not read, from memory either, once the mirror is re-read.
    {
        auto transaction = store->begin();
        REQUIRE(transaction.ok());
        REQUIRE(store->append(soc, "agent.a.b", text("lost"), 1, 1).ok());
    }
    REQUIRE(store->reload().ok());
    CHECK(read(total, 10).empty());
    CHECK(read(total - 2, 10) == from_file(total - 2, 10));
    REQUIRE(store->append(soc, "agent.a.b", text("kept"), 1, 1).ok());
    CHECK(read(total, 10) == std::vector<std::string>{"kept"});
    CHECK(read(total, 10) == from_file(total, 10));
}

TEST_CASE("gateway store: session tokens reach the file with a commit and outlive a rollback", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto fresh = key_of(5);  // no row yet: the first handshake of this identity
    GatewayToken token{};
    token.fill(9);
    {
        auto store = open_store(file);
        store->remember_token(fresh, "host7", token, 1'000);
        REQUIRE(store->find(fresh) != nullptr);
        CHECK(store->find(fresh)->id == "host7");
        CHECK(store->token_valid(fresh, token, 1'500));
        {
            auto transaction = store->begin();
            REQUIRE(transaction.ok());
            REQUIRE(store->save_tokens().ok());
        }  // rolled back: not on file, still remembered
        REQUIRE(store->reload().ok());
        CHECK(store->has_unsaved_tokens());
        CHECK(store->token_valid(fresh, token, 1'500));
    }
    {
        auto store = open_store(file);  // the process died before a commit: gone, as documented
        CHECK(store->find(fresh) == nullptr);
        store->remember_token(fresh, "host7", token, 2'000);
        auto transaction = store->begin();
        REQUIRE(transaction.ok());
        REQUIRE(store->save_tokens().ok());
        REQUIRE(transaction->commit().ok());
        store->tokens_saved();
        CHECK_FALSE(store->has_unsaved_tokens());
    }
    auto store = open_store(file);
    REQUIRE(store->find(fresh) != nullptr);
    CHECK(store->find(fresh)->id == "host7");
    CHECK(store->token_valid(fresh, token, 2'500));
    CHECK(store->find(fresh)->token_used_ms == 2'000);
}

TEST_CASE("gateway store: bounded per identity, oldest dropped first", "[gateway_store]") {
    TempDir dir;
    GatewayLimits limits;
    limits.max_messages = 3;
    auto store = open_store(dir.path / "gateway.db", limits);
    const auto soc = key_of(1);
    REQUIRE(store->save_patterns(soc, "soc", {"agent.>"}).ok());
    std::uint64_t dropped = 0;
    for (const auto* body : {"a", "b", "c", "d", "e"}) {
        auto appended = store->append(soc, "agent.x.y", text(body), 1, 10);
        REQUIRE(appended.ok());
        dropped += appended->dropped;
    }
    CHECK(dropped == 2);
    CHECK(store->find(soc)->pending == 3);
    auto kept = store->read_after(soc, 0, 10);
    REQUIRE(kept.ok());
    REQUIRE(kept->size() == 3);
    CHECK(payload(kept->at(0)) == "c");
    CHECK(kept->at(0).sequence == 3);
    // A batch counts its messages.
    auto big = store->append(soc, "agent.x.y", text("batch of two"), 2, 10);
    REQUIRE(big.ok());
    CHECK(big->dropped == 2);
    CHECK(store->find(soc)->pending == 3);
}

TEST_CASE("gateway store: entries and tokens expire after max_age", "[gateway_store]") {
    TempDir dir;
    GatewayLimits limits;
    limits.max_age_ms = 1000;
    auto store = open_store(dir.path / "gateway.db", limits);
    const auto soc = key_of(1);
    const auto host = key_of(2);
    REQUIRE(store->save_patterns(soc, "soc", {"agent.>"}).ok());
    REQUIRE(store->save_patterns(host, "host42", {"backend.host42.>"}).ok());
    REQUIRE(store->append(soc, "agent.x.y", text("old"), 1, 10'000).ok());
    REQUIRE(store->append(host, "backend.host42.p", text("old too"), 3, 10'000).ok());
    REQUIRE(store->append(soc, "agent.x.y", text("new"), 1, 10'900).ok());

    auto nothing = store->expire(10'500);
    REQUIRE(nothing.ok());
    CHECK(nothing->empty());
    auto expired = store->expire(11'500);
    REQUIRE(expired.ok());
    CHECK(expired->at("soc") == 1);
    CHECK(expired->at("host42") == 3);
    CHECK(store->find(soc)->pending == 1);
    CHECK(store->find(host)->pending == 0);
    auto left = store->read_after(soc, 0, 10);
    REQUIRE(left.ok());
    REQUIRE(left->size() == 1);
    CHECK(payload(left->at(0)) == "new");

    GatewayToken token{};
    token.fill(7);
    store->remember_token(soc, "soc", token, 20'000);
    CHECK(store->has_unsaved_tokens());
    CHECK(store->token_valid(soc, token, 20'500));
    CHECK_FALSE(store->token_valid(soc, token, 21'001));  // expired
    GatewayToken other{};
    other.fill(8);
    CHECK_FALSE(store->token_valid(soc, other, 20'500));           // not this identity's
    CHECK_FALSE(store->token_valid(host, token, 20'500));          // another identity
    CHECK_FALSE(store->token_valid(soc, GatewayToken{}, 20'500));  // none presented
}

TEST_CASE("gateway store: foreign and corrupt files are refused as bad input", "[gateway_store]") {
    TempDir dir;
    SECTION("the broker's queue file") {
        const auto file = dir.path / "queue.db";
        REQUIRE(aegis::store::open_state_database(file).ok());
        auto opened = GatewayStore::open(file, {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::bad_input);
        CHECK(opened.error().message.find("not an Aegis gateway state file") != std::string::npos);
    }
    SECTION("not SQLite at all") {
        const auto file = dir.path / "gateway.db";
        std::ofstream(file) << std::string(4096, 'x');
        std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        auto opened = GatewayStore::open(file, {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::bad_input);
        CHECK(opened.error().message.find("move it aside") != std::string::npos);
    }
    SECTION("the gateway's own file opens again") {
        const auto file = dir.path / "gateway.db";
        REQUIRE(GatewayStore::open(file, {}).ok());
        REQUIRE(GatewayStore::open(file, {}).ok());
    }
}
