#include "store/session_token_store.h"

#include <algorithm>

#include "store/sqlite.h"

namespace aegis::store {

SessionTokenStore::SessionTokenStore(std::shared_ptr<Database> database) : database_(std::move(database)) {}

SessionTokenStore::~SessionTokenStore() = default;

Result<std::unique_ptr<SessionTokenStore>> SessionTokenStore::open(std::shared_ptr<Database> database) {
    // One row at most (name = 'gateway'); a table of its own, so schema 1 files need no upgrade.
    if (auto created =
            database->exec("CREATE TABLE IF NOT EXISTS session (name TEXT PRIMARY KEY, token BLOB NOT NULL)");
        !created) {
        return created.take_error();
    }
    return std::unique_ptr<SessionTokenStore>(new SessionTokenStore(std::move(database)));
}

Result<protocol::SessionToken> SessionTokenStore::load() const {
    auto statement = database_->prepare("SELECT token FROM session WHERE name = 'gateway'");
    if (!statement) return statement.take_error();
    auto row = statement->step();
    if (!row) return row.take_error();
    protocol::SessionToken token{};
    if (!*row) return token;
    const auto blob = statement->column_blob_view(0);
    if (blob.size() != token.size()) {
        return make_error(ExitCode::bad_input, "{} is not an {} (or is corrupt): the session token cannot be read",
                          database_->path().string(), database_->label());
    }
    std::copy(blob.begin(), blob.end(), token.begin());
    return token;
}

Result<void> SessionTokenStore::save(const protocol::SessionToken& token) {
    auto statement = database_->prepare(
        "INSERT INTO session (name, token) VALUES ('gateway', ?1) ON CONFLICT (name) DO UPDATE SET token = "
        "excluded.token");
    if (!statement) return statement.take_error();
    statement->bind(1, ByteView(token.data(), token.size()));
    return statement->run();
}

}  // namespace aegis::store
