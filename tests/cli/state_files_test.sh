#!/usr/bin/env bash
# The daemons' state files hold payloads in clear, so they are private, for both daemons:
#  (a) made under the common umask 022, the state directories are 0700 and every file the
#      gateway and the broker write there (gateway.db, queue.db, their -wal and -shm,
#      known_backends, broker.log) is 0600;
#  (b) an existing state directory or state file open to the group or others, or (as root)
#      owned by another user, is refused at start: exit 6, one line naming it and the fix;
#  (c) a state file with damaged pages, even pages the daemon would not read before serving,
#      is refused at start: exit 6, one line naming it and saying to move it aside; the file
#      is left as it was.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

umask 022 # what most accounts have: a file made without an explicit mode would be 0644

make_identities gateway host42
authorize agent host42

gw_state=$TEST_TMP/gateway-state # start_gateway's
agent_state=$TEST_TMP/agent/state
sock=$TEST_TMP/broker.sock
gateway_args=(--identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" --state-dir "$gw_state")
stop_gateway() {
    kill -TERM "$gateway_pid"
    wait "$gateway_pid" 2>/dev/null
}
connect_args() { # the broker's command line for the current gateway
    printf '%s\0' "$connect" "$gateway_url" --identity "$TEST_TMP/host42" --accept-new --socket "$sock" \
        --state-dir "$agent_state" --heartbeat 0 --timeout 20
}

# --- (a) what the daemons create ------------------------------------------------------------------

start_gateway
mapfile -d '' -t start_agent < <(connect_args)
expect_exit 0 "${start_agent[@]}"
at_exit "$connect" --stop --socket "$sock"
expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.logs -m "a payload no one else may read"

for dir in "$gw_state" "$agent_state"; do
    expect_mode 700 "$dir"
done
# While both run, so the write-ahead logs and their index files exist.
for file in "$gw_state"/gateway.db{,-wal,-shm} "$agent_state"/{queue.db{,-wal,-shm},known_backends,broker.log}; do
    [[ -f $file ]] || fail "$file was not made"
    expect_mode 600 "$file"
done

expect_exit 0 "$connect" --stop --socket "$sock"
stop_gateway

# --- (b) what they refuse -------------------------------------------------------------------------

# refused DAEMON PATH FIX: starting DAEMON fails with exit 6 and one line naming PATH and FIX.
refused() {
    local daemon=$1 path=$2 fix=$3
    if [[ $daemon == gateway ]]; then
        RUN_TIMEOUT=20 expect_error 6 "$gateway" --listen 127.0.0.1:0 "${gateway_args[@]}"
    else
        RUN_TIMEOUT=20 expect_error 6 "${start_agent[@]}"
    fi
    expect_contains "$err" "$path" "the refusal"
    expect_contains "$err" "$fix $path" "the fix in the refusal"
}

chmod 755 "$gw_state"
refused gateway "$gw_state" "chmod 700"
chmod 750 "$gw_state"
refused gateway "$gw_state" "chmod 700"
chmod 700 "$gw_state"
chmod 644 "$gw_state/gateway.db"
refused gateway "$gw_state/gateway.db" "chmod 600"
chmod 600 "$gw_state/gateway.db"
# A log left by an earlier run, as SQLite made it under the umask.
touch "$gw_state/gateway.db-wal"
chmod 644 "$gw_state/gateway.db-wal"
refused gateway "$gw_state/gateway.db-wal" "chmod 600"
rm -f "$gw_state/gateway.db-wal"

chmod 705 "$agent_state"
refused broker "$agent_state" "chmod 700"
chmod 700 "$agent_state"
for file in queue.db known_backends broker.log; do
    chmod 640 "$agent_state/$file"
    refused broker "$agent_state/$file" "chmod 600"
    chmod 600 "$agent_state/$file"
done

if [[ $(id -u) == 0 ]]; then
    chown 65534 "$gw_state"
    refused gateway "$gw_state" "chown 0"
    chown 0 "$gw_state"
    chown 65534 "$agent_state/queue.db"
    refused broker "$agent_state/queue.db" "chown 0"
    chown 0 "$agent_state/queue.db"
else
    echo "(b) state owned by another user: not checked (needs root to give a file away)"
fi

# Put right, both start again on what they made.
start_gateway
mapfile -d '' -t start_agent < <(connect_args)
expect_exit 0 "${start_agent[@]}"
expect_exit 0 "$connect" --stop --socket "$sock"
stop_gateway

# --- (c) a damaged state file -------------------------------------------------------------------

# damage FILE INDEX: overwrites the page header of the root page of INDEX in FILE (a b-tree the
# daemons do not read at start, so only a check of the whole file finds it).
damage() {
    "$python" - "$1" "$2" <<'PY'
import sqlite3, sys
path, index = sys.argv[1], sys.argv[2]
c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
page_size = c.execute("PRAGMA page_size").fetchone()[0]
root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0]
c.close()
with open(path, "r+b") as f:
    f.seek((root - 1) * page_size)
    f.write(b"\xff" * 12)
PY
}
# refused_corrupt DAEMON FILE: starting DAEMON fails with exit 6 and one line naming FILE and
# what to do, and leaves FILE as it was.
refused_corrupt() {
    local daemon=$1 file=$2
    cp "$file" "$TEST_TMP/before"
    if [[ $daemon == gateway ]]; then
        RUN_TIMEOUT=20 expect_error 6 "$gateway" --listen 127.0.0.1:0 "${gateway_args[@]}"
    else
        RUN_TIMEOUT=20 expect_error 6 "${start_agent[@]}" --no-wait
    fi
    expect_contains "$err" "$file is corrupt" "the refusal of a damaged file"
    expect_contains "$err" "move it aside" "what to do with a damaged file"
    cmp -s "$file" "$TEST_TMP/before" || fail "the refused $file was changed"
    check_passed
}

# The broker holds messages while the gateway is away, so its queue has rows and indexes.
start_gateway
mapfile -d '' -t start_agent < <(connect_args)
expect_exit 0 "${start_agent[@]}"
stop_gateway
seq 1 300 | sed 's/^/queued while the gateway is away /' >"$TEST_TMP/lines"
expect_exit 0 "$send" --socket "$sock" -l agent.host42.logs <"$TEST_TMP/lines"
expect_exit 0 "$connect" --stop --socket "$sock"
[[ ! -e $agent_state/queue.db-wal ]] || fail "the broker left its log behind"
cp "$agent_state/queue.db" "$TEST_TMP/queue.good"

damage "$agent_state/queue.db" sqlite_autoindex_messages_1
refused_corrupt broker "$agent_state/queue.db"
cp "$TEST_TMP/queue.good" "$agent_state/queue.db"
size=$(stat -c %s "$agent_state/queue.db")
((size > 8192)) || fail "queue.db is only $size bytes"
dd if=/dev/urandom of="$agent_state/queue.db" bs=4096 seek=1 count=$((size / 4096 - 1)) conv=notrunc 2>/dev/null
refused_corrupt broker "$agent_state/queue.db"

damage "$gw_state/gateway.db" sqlite_autoindex_identities_1
refused_corrupt gateway "$gw_state/gateway.db"
size=$(stat -c %s "$gw_state/gateway.db")
dd if=/dev/urandom of="$gw_state/gateway.db" bs=4096 seek=1 count=$((size / 4096 - 1)) conv=notrunc 2>/dev/null
refused_corrupt gateway "$gw_state/gateway.db"

# Moved aside as told, each starts again with an empty file; the good queue, put back, is whole.
mv "$gw_state/gateway.db" "$TEST_TMP/gateway.db.corrupt"
start_gateway
cp "$TEST_TMP/queue.good" "$agent_state/queue.db"
mapfile -d '' -t start_agent < <(connect_args)
expect_exit 0 "${start_agent[@]}"
expect_exit 0 "$connect" --stop --socket "$sock"
stop_gateway

summary
