#!/usr/bin/env bash
# The daemons' log lines: --log-level drops the less important ones; under journald
# ($JOURNAL_STREAM naming standard error) each line starts with its syslog priority ("<4>") and
# has no timestamp of its own; --log-format json writes one object a line; a bad level or format
# is a usage error, and a bad one in a configuration file names its line.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$gateway" "$connect" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done
command -v python3 >/dev/null || fail "python3 is required (scripts/deps.sh installs it)"


for who in gateway host42; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")" >"$TEST_TMP/authorized"
gw=(--listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized")
# A broker whose gateway is not there (port 9, discard): it logs "listening on" (info), then
# "session backing_off" (a warning) again and again.
n=0
broker() { # broker LOG [options...]: a foreground broker logging to LOG, killed at exit
    local log=$1
    shift
    n=$((n + 1))
    "$connect" ws://127.0.0.1:9/ --foreground --no-wait --identity "$TEST_TMP/host42" \
        --backend-key "$TEST_TMP/gateway.pub" --socket "$TEST_TMP/b$n.sock" --state-dir "$TEST_TMP/state$n" \
        --backoff-min 0.1 --backoff-max 0.2 --heartbeat 0 "$@" 2>>"$log" &
    at_exit kill -KILL $!
}

# --- text, the default: a timestamp, the tool, the line ---------------------------------------------------

broker "$TEST_TMP/text.log"
wait_for "a backing-off line" 20 grep -q "session backing_off" "$TEST_TMP/text.log"
expect_match "$(head -1 "$TEST_TMP/text.log")" \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z aegis-connect\[[0-9]+\]: ' "a text line"

# --- --log-level warn: the warnings stay, the information goes ---------------------------------------------

broker "$TEST_TMP/warn.log" --log-level warn
wait_for "a backing-off line" 20 grep -q "session backing_off" "$TEST_TMP/warn.log"
expect_not_contains "$(cat "$TEST_TMP/warn.log")" "listening on" "the warn-level log"
expect_not_contains "$(cat "$TEST_TMP/warn.log")" "connecting to" "the warn-level log"
"$gateway" "${gw[@]}" --state-dir "$TEST_TMP/gw-state" --log-level error 2>>"$TEST_TMP/gw-error.log" &
gw_pid=$!
at_exit kill -KILL "$gw_pid"
"$gateway" "${gw[@]}" --state-dir "$TEST_TMP/gw-state-b" --log-level info 2>>"$TEST_TMP/gw-info.log" &
at_exit kill -KILL $!
wait_for "the info-level gateway" 20 grep -q "listening on" "$TEST_TMP/gw-info.log"
kill -0 "$gw_pid" || fail "the error-level gateway died"
expect_eq "$(cat "$TEST_TMP/gw-error.log")" "" "the error-level gateway's log while all is well"

# --- under journald: a priority prefix, no timestamp ---------------------------------------------------------

journal=$TEST_TMP/journal.log
: >"$journal"
# journald gives the service a stream whose device and inode are in JOURNAL_STREAM.
JOURNAL_STREAM=$(stat -c '%d:%i' "$journal") broker "$journal"
wait_for "a backing-off line" 20 grep -q "session backing_off" "$journal"
expect_match "$(cat "$journal")" '(^|'$'\n'')<6>listening on ' "the journal's info line"
expect_match "$(cat "$journal")" '(^|'$'\n'')<4>session backing_off' "the journal's warning"
expect_not_contains "$(cat "$journal")" "aegis-connect[" "the journal's lines (journald names the unit)"
if grep -Evq '^<[3-7]>' "$journal"; then fail "a journal line without its priority: $(grep -Ev '^<[3-7]>' "$journal")"; fi
check_passed
# A JOURNAL_STREAM that names another file (inherited by a shell) changes nothing.
JOURNAL_STREAM=1:1 broker "$TEST_TMP/not-journal.log"
wait_for "a line" 20 grep -q "listening on" "$TEST_TMP/not-journal.log"
expect_not_contains "$(cat "$TEST_TMP/not-journal.log")" "<6>" "a log that is not the journal"

# --- --log-format json: one object a line ---------------------------------------------------------------------

broker "$TEST_TMP/json.log" --log-format json
wait_for "a backing-off line" 20 grep -q "session backing_off" "$TEST_TMP/json.log"
"$gateway" "${gw[@]}" --state-dir "$TEST_TMP/gw-state-j" --log-format json 2>>"$TEST_TMP/gw-json.log" &
at_exit kill -KILL $!
wait_for "the gateway's json line" 20 grep -q "listening on" "$TEST_TMP/gw-json.log"
for log in "$TEST_TMP/json.log" "$TEST_TMP/gw-json.log"; do
    expect_exit 0 python3 -c '
import json, sys
levels = set()
for line in open(sys.argv[1]):
    record = json.loads(line)
    assert set(record) == {"time", "level", "tool", "pid", "message"}, record
    assert record["tool"] in ("aegis-connect", "aegis-gateway"), record
    assert record["time"].endswith("Z"), record
    levels.add(record["level"])
print(" ".join(sorted(levels)))
' "$log"
    expect_contains "$out" "info" "the levels in $(basename "$log")"
done
expect_contains "$(python3 -c 'import json,sys; print([json.loads(l)["level"] for l in open(sys.argv[1]) if "backing_off" in l][0])' "$TEST_TMP/json.log")" "warn" "a backing-off line's level"

# --- bad values -------------------------------------------------------------------------------------------

expect_error 2 "$gateway" "${gw[@]}" --state-dir "$TEST_TMP/gw-state" --log-level loud
expect_contains "$err" "--log-level takes error, warn, info or debug, not 'loud'"
expect_error 2 "$connect" ws://127.0.0.1:9/ --accept-new --log-format xml
expect_contains "$err" "--log-format takes text or json, not 'xml'"
printf 'log-level = loud\n' >"$TEST_TMP/bad.conf"
expect_error 6 "$gateway" "${gw[@]}" --state-dir "$TEST_TMP/gw-state" --config "$TEST_TMP/bad.conf"
expect_contains "$err" "bad.conf:1:"

summary
