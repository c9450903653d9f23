#pragma once
// The broker's gateway session token (PROTOCOL.md §3.5), kept in its state file so that a
// restarted broker resumes its session instead of starting a fresh one. The token lets nobody
// in (it is bound to the identity that proves its key), but it names a session: it stays in
// the owner-only state file and is never logged.

#include <memory>

#include "core/result.h"
#include "protocol/handshake.h"

namespace aegis::store {

class Database;

class SessionTokenStore {
public:
    // Adds the token's table to a state file that has none (files from before it was kept).
    [[nodiscard]] static Result<std::unique_ptr<SessionTokenStore>> open(std::shared_ptr<Database> database);
    ~SessionTokenStore();

    // The last token saved; all zero when there is none.
    [[nodiscard]] Result<protocol::SessionToken> load() const;
    [[nodiscard]] Result<void> save(const protocol::SessionToken& token);

private:
    explicit SessionTokenStore(std::shared_ptr<Database> database);

    std::shared_ptr<Database> database_;
};

}  // namespace aegis::store
