// The gateway's state in its SQLite file, through the GatewayState interface: identities,
// tokens and per-identity inboxes on real files in a temporary directory, reopened the way a
// restarted gateway reopens them. This store runs every completion before the call returns, but
// a stored batch's once its log sync runs in the background (sync_in_background).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_gateway_store.h"
#include "store/state_database.h"

namespace {

using aegis::Result;
using aegis::store::GatewayLimits;
using aegis::store::GatewayToken;
using aegis::store::SqliteGatewayStore;
using aegis::store::StoredBatch;

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

aegis::Bytes text(const std::string& value) {
    const auto bytes = aegis::as_bytes(value);
    return {bytes.begin(), bytes.end()};
}

std::string payload(const StoredBatch& batch) {
    return std::string(aegis::as_text(batch.batch));
}

// The answer of a call whose completion runs before it returns.
template <class T, class Call>
Result<T> answer(Call&& call) {
    std::optional<Result<T>> out;
    call([&](Result<T> result) { out.emplace(std::move(result)); });
    REQUIRE(out.has_value());
    return std::move(*out);
}

struct Store {
    std::unique_ptr<SqliteGatewayStore> state;

    explicit Store(const std::filesystem::path& file, GatewayLimits limits = {}) {
        auto opened = SqliteGatewayStore::open(file, limits);
        REQUIRE(opened.ok());
        state = std::move(opened.value());
    }

    void subscribe(const aegis::crypto::PublicKey& key, const std::string& id, std::vector<std::string> patterns) {
        REQUIRE(answer<void>([&](auto done) { state->save_subscriptions(key, id, patterns, done); }).ok());
    }
    Result<aegis::store::CommitOutcome> commit(aegis::store::StateCommit commit) {
        return answer<aegis::store::CommitOutcome>([&](auto done) { state->commit(std::move(commit), done); });
    }
    // One batch for one identity, in a commit of its own: the messages dropped to make room.
    std::uint64_t append(const aegis::crypto::PublicKey& key, const std::string& body, std::uint64_t messages = 1,
                         std::uint64_t now_ms = 1000) {
        aegis::store::StateCommit one;
        one.appends.push_back({"agent.host42.logs", text(body), messages, {key}});
        one.now_ms = now_ms;
        auto committed = commit(std::move(one));
        REQUIRE(committed.ok());
        std::uint64_t dropped = 0;
        for (const auto& [id, count] : committed->dropped_full) dropped += count;
        return dropped;
    }
    void acknowledge(const aegis::crypto::PublicKey& key, std::uint64_t sequence) {
        aegis::store::StateCommit acks;
        acks.acknowledgements[key] = sequence;
        REQUIRE(commit(std::move(acks)).ok());
    }
    std::vector<StoredBatch> read(const aegis::crypto::PublicKey& key, std::uint64_t after, std::size_t limit = 10) {
        auto read = answer<std::vector<StoredBatch>>([&](auto done) { state->read_after(key, after, limit, done); });
        REQUIRE(read.ok());
        return std::move(read.value());
    }
    aegis::store::OpenedSession open(const aegis::crypto::PublicKey& key, const std::string& id,
                                     const GatewayToken& presented, std::uint64_t now_ms) {
        auto opened = answer<aegis::store::OpenedSession>(
            [&](auto done) { state->open_session(key, id, presented, now_ms, done); });
        REQUIRE(opened.ok());
        return std::move(opened.value());
    }
    aegis::store::IdentityState row(const aegis::crypto::PublicKey& key) {
        auto found = state->identity(key);
        REQUIRE(found.has_value());
        return *found;
    }
};

std::vector<std::string> payloads(const std::vector<StoredBatch>& batches) {
    std::vector<std::string> out;
    for (const auto& batch : batches) out.push_back(payload(batch));
    return out;
}

// A commit that fails half way: its second recipient has no inbox.
aegis::store::StateCommit failing_commit(const aegis::crypto::PublicKey& key) {
    aegis::store::StateCommit commit;
    commit.appends.push_back({"agent.a.b", text("lost"), 1, {key, key_of(99)}});
    return commit;
}

}  // namespace

TEST_CASE("gateway store: inbox sequences, acknowledgement and reopening", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    const auto host = key_of(2);
    {
        Store store(file);
        store.subscribe(soc, "soc", {"agent.>", "backend.all.>"});
        store.subscribe(host, "host42", {"backend.host42.>"});
        for (const auto* body : {"one", "two", "three"}) CHECK(store.append(soc, body) == 0);
        store.append(host, "deny", 2);
        CHECK(store.read(host, 0).at(0).sequence == 1);  // sequences are per identity
        CHECK(store.row(soc).last_sequence == 3);
        CHECK(store.row(soc).pending == 3);
        CHECK(store.row(host).pending == 2);
        CHECK(store.state->totals().messages == 5);
        CHECK(store.state->totals().identities == 2);

        const auto all = store.read(soc, 0);
        REQUIRE(all.size() == 3);
        CHECK(payload(all.at(0)) == "one");
        CHECK(all.at(2).sequence == 3);
        CHECK(all.at(1).channel == "agent.host42.logs");

        store.acknowledge(soc, 2);
        CHECK(store.row(soc).acknowledged == 2);
        CHECK(store.row(soc).pending == 1);
        store.acknowledge(soc, 1);  // never goes back
        CHECK(store.row(soc).acknowledged == 2);
        store.acknowledge(soc, 99);  // clamped to what was handed out
        CHECK(store.row(soc).acknowledged == 3);
        CHECK(store.row(soc).pending == 0);
        store.append(soc, "four");
        CHECK(store.read(soc, 3).at(0).sequence == 4);
    }
    // A restart reads everything back.
    Store store(file);
    const auto state = store.row(soc);
    CHECK(state.id == "soc");
    CHECK(state.patterns == std::vector<std::string>{"agent.>", "backend.all.>"});
    CHECK(state.last_sequence == 4);
    CHECK(state.acknowledged == 3);
    CHECK(state.pending == 1);
    CHECK(payloads(store.read(soc, state.acknowledged)) == std::vector<std::string>{"four"});
    CHECK(store.row(host).pending == 2);
}

TEST_CASE("gateway store: subscribers of a channel are the identities with a matching stored pattern",
          "[gateway_store]") {
    TempDir dir;
    Store store(dir.path / "gateway.db");
    store.subscribe(key_of(1), "soc", {"agent.>", "backend.all.>"});
    store.subscribe(key_of(2), "host42", {"backend.host42.>"});
    store.subscribe(key_of(3), "audit", {"agent.*.logs", "agent.host42.*"});
    const auto found = store.state->subscribers("agent.host42.logs");
    REQUIRE(found.size() == 2);
    for (const auto& subscriber : found) {
        if (subscriber.key == key_of(1)) {
            CHECK(subscriber.id == "soc");
            CHECK(subscriber.patterns == std::vector<std::string>{"agent.>"});
        } else {
            CHECK(subscriber.key == key_of(3));
            CHECK(subscriber.patterns == std::vector<std::string>{"agent.*.logs", "agent.host42.*"});
        }
    }
    CHECK(store.state->subscribers("backend.other.policies").empty());
}

TEST_CASE("gateway store: a commit is all or nothing", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    {
        Store store(file);
        store.subscribe(soc, "soc", {"agent.>"});
        aegis::store::StateCommit two;
        two.appends.push_back({"agent.a.b", text("x"), 1, {soc}});
        two.appends.push_back({"agent.a.b", text("y"), 1, {soc}});
        REQUIRE(store.commit(std::move(two)).ok());
        CHECK_FALSE(store.commit(failing_commit(soc)).ok());  // rolled back
        CHECK(store.row(soc).last_sequence == 2);
        CHECK(payloads(store.read(soc, 0)) == std::vector<std::string>{"x", "y"});
    }
    Store store(file);
    CHECK(store.row(soc).pending == 2);
}

TEST_CASE("gateway store: reads after an append, from memory or from the file, give what the file holds",
          "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    GatewayLimits limits;
    limits.max_messages = 1000;
    Store store(file, limits);
    store.subscribe(soc, "soc", {"agent.>"});
    // What a fresh store (the file alone) gives for the same read.
    const auto from_file = [&](std::uint64_t after, std::size_t limit) {
        Store other(file, limits);
        return payloads(other.read(soc, after, limit));
    };
    const auto read = [&](std::uint64_t after, std::size_t limit) { return payloads(store.read(soc, after, limit)); };
    const std::size_t total = SqliteGatewayStore::kRecentPerInbox + 6;  // more than memory keeps
    for (std::size_t n = 1; n <= total; ++n) store.append(soc, std::to_string(n));
    for (const std::uint64_t after : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{6}, std::uint64_t{7},
                                      std::uint64_t{total - 1}, std::uint64_t{total}}) {
        CHECK(read(after, 10) == from_file(after, 10));
    }
    CHECK(read(total - 2, 10) == std::vector<std::string>{std::to_string(total - 1), std::to_string(total)});
    CHECK(read(total - 5, 2).size() == 2);

    store.acknowledge(soc, total - 2);
    CHECK(read(total - 3, 10) == from_file(total - 3, 10));
    CHECK(read(0, 10) == std::vector<std::string>{std::to_string(total - 1), std::to_string(total)});

    // An append a failed commit took back is not read, from memory either.
    CHECK_FALSE(store.commit(failing_commit(soc)).ok());
    CHECK(read(total, 10).empty());
    CHECK(read(total - 2, 10) == from_file(total - 2, 10));
    store.append(soc, "kept");
    CHECK(read(total, 10) == std::vector<std::string>{"kept"});
    CHECK(read(total, 10) == from_file(total, 10));
}

TEST_CASE("gateway store: session tokens reach the file with a commit and outlive a failed one", "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto fresh = key_of(5);  // no row yet: the first handshake of this identity
    GatewayToken token{};
    {
        Store store(file);
        const auto opened = store.open(fresh, "host7", GatewayToken{}, 1'000);
        CHECK_FALSE(opened.resumed);
        CHECK(opened.token != GatewayToken{});
        token = opened.token;
        CHECK(store.row(fresh).id == "host7");
        CHECK(store.open(fresh, "host7", token, 1'500).resumed);
        CHECK_FALSE(store.commit(failing_commit(key_of(1))).ok());  // not on file, still remembered
        CHECK(store.open(fresh, "host7", token, 1'500).resumed);
    }
    {
        Store store(file);  // the process died before a commit: gone, as documented
        CHECK_FALSE(store.state->identity(fresh).has_value());
        const auto opened = store.open(fresh, "host7", token, 2'000);
        CHECK_FALSE(opened.resumed);
        token = opened.token;
        REQUIRE(store.commit({}).ok());
    }
    Store store(file);
    CHECK(store.row(fresh).id == "host7");
    CHECK(store.row(fresh).token_used_ms == 2'000);
    CHECK(store.open(fresh, "host7", token, 2'500).resumed);
}

TEST_CASE("gateway store: bounded per identity, oldest dropped first", "[gateway_store]") {
    TempDir dir;
    GatewayLimits limits;
    limits.max_messages = 3;
    Store store(dir.path / "gateway.db", limits);
    const auto soc = key_of(1);
    store.subscribe(soc, "soc", {"agent.>"});
    std::uint64_t dropped = 0;
    for (const auto* body : {"a", "b", "c", "d", "e"}) dropped += store.append(soc, body);
    CHECK(dropped == 2);
    CHECK(store.row(soc).pending == 3);
    const auto kept = store.read(soc, 0);
    REQUIRE(kept.size() == 3);
    CHECK(payload(kept.at(0)) == "c");
    CHECK(kept.at(0).sequence == 3);
    // A batch counts its messages.
    CHECK(store.append(soc, "batch of two", 2) == 2);
    CHECK(store.row(soc).pending == 3);
}

TEST_CASE("gateway store: entries and tokens expire after max_age", "[gateway_store]") {
    TempDir dir;
    GatewayLimits limits;
    limits.max_age_ms = 1000;
    Store store(dir.path / "gateway.db", limits);
    const auto soc = key_of(1);
    const auto host = key_of(2);
    store.subscribe(soc, "soc", {"agent.>"});
    store.subscribe(host, "host42", {"backend.host42.>"});
    store.append(soc, "old", 1, 10'000);
    store.append(host, "old too", 3, 10'000);
    store.append(soc, "new", 1, 10'900);

    const auto expire = [&](std::uint64_t now_ms) {
        auto expired =
            answer<std::map<std::string, std::uint64_t>>([&](auto done) { store.state->expire(now_ms, done); });
        REQUIRE(expired.ok());
        return std::move(expired.value());
    };
    CHECK(expire(10'500).empty());
    const auto expired = expire(11'500);
    CHECK(expired.at("soc") == 1);
    CHECK(expired.at("host42") == 3);
    CHECK(store.row(soc).pending == 1);
    CHECK(store.row(host).pending == 0);
    CHECK(payloads(store.read(soc, 0)) == std::vector<std::string>{"new"});

    const auto token = store.open(soc, "soc", GatewayToken{}, 20'000).token;
    CHECK_FALSE(store.open(host, "host42", token, 20'100).resumed);  // another identity's
    CHECK(store.open(soc, "soc", token, 20'500).resumed);
    CHECK_FALSE(store.open(soc, "soc", token, 21'501).resumed);           // expired: a new token instead
    CHECK_FALSE(store.open(soc, "soc", token, 21'600).resumed);           // no longer this identity's
    CHECK_FALSE(store.open(soc, "soc", GatewayToken{}, 21'700).resumed);  // none presented
}

TEST_CASE("gateway store: foreign and corrupt files are refused as bad input", "[gateway_store]") {
    TempDir dir;
    SECTION("the broker's queue file") {
        const auto file = dir.path / "queue.db";
        REQUIRE(aegis::store::open_state_database(file).ok());
        auto opened = SqliteGatewayStore::open(file, {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::bad_input);
        CHECK(opened.error().message.find("not an Aegis gateway state file") != std::string::npos);
    }
    SECTION("not SQLite at all") {
        const auto file = dir.path / "gateway.db";
        std::ofstream(file) << std::string(4096, 'x');
        std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        auto opened = SqliteGatewayStore::open(file, {});
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().exit == aegis::ExitCode::bad_input);
        CHECK(opened.error().message.find("move it aside") != std::string::npos);
    }
    SECTION("the gateway's own file opens again") {
        const auto file = dir.path / "gateway.db";
        REQUIRE(SqliteGatewayStore::open(file, {}).ok());
        REQUIRE(SqliteGatewayStore::open(file, {}).ok());
    }
}

TEST_CASE("gateway store: with the sync in the background, a stored batch is answered once its log is synced",
          "[gateway_store]") {
    TempDir dir;
    const auto file = dir.path / "gateway.db";
    const auto soc = key_of(1);
    {
        Store store(file);
        store.subscribe(soc, "soc", {"agent.>"});
        // The completions come back through `post`, as the gateway's loop would run them.
        std::mutex mutex;
        std::vector<std::function<void()>> posted;
        REQUIRE(store.state->sync_in_background([&](std::function<void()> then) {
            const std::lock_guard lock(mutex);
            posted.push_back(std::move(then));
        }));
        const auto run_posted = [&] {
            for (int waited = 0; waited < 1000; ++waited) {
                {
                    const std::lock_guard lock(mutex);
                    if (!posted.empty()) break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            std::vector<std::function<void()>> ready;
            {
                const std::lock_guard lock(mutex);
                ready.swap(posted);
            }
            for (auto& then : ready) then();
            return ready.size();
        };
        std::vector<Result<aegis::store::CommitOutcome>> answers;
        for (const char* body : {"a", "b"}) {
            aegis::store::StateCommit one;
            one.appends.push_back({"agent.a.b", text(body), 1, {soc}});
            store.state->commit(std::move(one), [&](auto result) { answers.push_back(std::move(result)); });
        }
        CHECK(answers.empty());                                                     // not before the sync
        CHECK(payloads(store.read(soc, 0)) == std::vector<std::string>{"a", "b"});  // stored meanwhile
        std::size_t ran = 0;
        while (ran < 2) {
            const auto now = run_posted();
            REQUIRE(now > 0);
            ran += now;
        }
        REQUIRE(answers.size() == 2);
        CHECK(answers[0].ok());
        CHECK(answers[1].ok());
        // A commit that need not survive power loss (acks, tokens) is answered at once.
        aegis::store::StateCommit acks;
        acks.acknowledgements[soc] = 1;
        acks.survive_power_loss = false;
        bool answered = false;
        store.state->commit(std::move(acks), [&](auto result) { answered = result.ok(); });
        CHECK(answered);
        // A failed commit is answered at once, with its error, and syncs nothing.
        bool failed = false;
        store.state->commit(failing_commit(soc), [&](auto result) { failed = !result.ok(); });
        CHECK(failed);
        // Shutting down: close() syncs and answers what still waits, once, before it returns.
        int closing_answers = 0;
        aegis::store::StateCommit last;
        last.appends.push_back({"agent.a.b", text("c"), 1, {soc}});
        store.state->commit(std::move(last), [&](auto result) { closing_answers += result.ok() ? 1 : 100; });
        CHECK(closing_answers == 0);
        store.state->close();
        CHECK(closing_answers == 1);
        (void)run_posted();  // the syncer's own answer comes later and finds it answered
        CHECK(closing_answers == 1);
    }  // the store stops its syncer before the file closes
    Store store(file);
    CHECK(store.row(soc).pending == 2);
    CHECK(payloads(store.read(soc, 1)) == std::vector<std::string>{"b", "c"});
}
