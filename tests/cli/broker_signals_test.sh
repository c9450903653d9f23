#!/usr/bin/env bash
# SIGHUP never stops the broker: detached, it reopens its log file (log rotation: the old file
# moved away, a new one started) and says so there; in the foreground it logs a line and goes
# on. A broker that died anyway leaves a stale socket, which is no obstacle to the next start,
# while a live broker on the socket still is.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid_of() { "$stat" --socket "$1" --json | sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p'; }

make_identities gateway host42
authorize agent host42
start_gateway
url=$gateway_url
sock=$TEST_TMP/a.sock
log=$TEST_TMP/state/broker.log # the default: STATE_DIR/broker.log
common=("$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub" --socket "$sock"
    --state-dir "$TEST_TMP/state" --backoff-min 0.2 --backoff-max 0.5 --heartbeat 0)

# --- detached: SIGHUP reopens the log file ------------------------------------------------------------

expect_exit 0 "$connect" "${common[@]}"
at_exit "$connect" --stop --socket "$sock"
pid=$(pid_of "$sock")
[[ -n $pid ]] || fail "no pid in the broker's status"
mv "$log" "$log.1"
kill -HUP "$pid"
wait_for "the reopened log file" 10 grep -q "received SIGHUP; log file reopened" "$log"
kill -0 "$pid" 2>/dev/null || fail "the broker died on SIGHUP"
check_passed
expect_exit 0 "$stat" --socket "$sock" --check
expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.tests -m "after SIGHUP"
expect_not_contains "$(cat "$log.1")" "SIGHUP" "the rotated log file"
kill -HUP "$pid" # and again: the handler stays armed
wait_for "the second SIGHUP" 10 eval '(($(grep -c "received SIGHUP" "$log") == 2))'
kill -0 "$pid" 2>/dev/null || fail "the broker died on a second SIGHUP"
check_passed

# --- a stale socket: a dead broker's is removed, a live one's is not --------------------------------

expect_error 1 "$connect" "${common[@]}"
expect_contains "$err" "a broker is already running" "a second broker on a live socket"
kill -KILL "$pid"
wait_for "the broker to die" 10 gone "$pid"
[[ -S $sock ]] || fail "expected the killed broker's socket to stay behind"
check_passed
expect_exit 0 "$connect" "${common[@]}"
expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.tests -m "after a stale socket"
expect_exit 0 "$connect" --stop --socket "$sock"

# --- relative paths: a detached broker changes to "/", they still name the files given ----------------

mkdir -m 700 "$TEST_TMP/cwd"
(
    cd "$TEST_TMP/cwd" || exit 1
    "$connect" "$url" --identity ../host42 --backend-key ../gateway.pub --socket rel.sock --state-dir rel-state \
        --log rel.log --heartbeat 0
) >"$TEST_TMP/rel.out" 2>&1 || fail "a broker with relative paths did not start: $(cat "$TEST_TMP/rel.out")"
check_passed
at_exit "$connect" --stop --socket "$TEST_TMP/cwd/rel.sock"
[[ -S $TEST_TMP/cwd/rel.sock && -s $TEST_TMP/cwd/rel-state/queue.db && -s $TEST_TMP/cwd/rel.log ]] ||
    fail "the relative socket, state dir or log file is not where it was named: $(ls -R "$TEST_TMP/cwd")"
check_passed
expect_exit 0 "$send" --socket "$TEST_TMP/cwd/rel.sock" --wait-ack agent.host42.tests -m "relative paths"
expect_exit 0 "$connect" --stop --socket "$TEST_TMP/cwd/rel.sock"

# --- foreground: SIGHUP logs a line, the broker goes on ---------------------------------------------

"$connect" "${common[@]}" --foreground 2>"$TEST_TMP/foreground.log" &
fg_pid=$!
at_exit kill -KILL "$fg_pid"
wait_for "the foreground broker" 20 connected "$sock"
kill -HUP "$fg_pid"
wait_for "the SIGHUP line" 10 grep -q "received SIGHUP" "$TEST_TMP/foreground.log"
kill -0 "$fg_pid" 2>/dev/null || fail "the foreground broker died on SIGHUP"
check_passed
expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.tests -m "foreground after SIGHUP"
expect_exit 0 "$connect" --stop --socket "$sock"
wait "$fg_pid"
code=$?
expect_eq "$code" 0 "the foreground broker's exit status after --stop"

summary
