#!/usr/bin/env bash
# Configuration files (--config, aegis-gateway.conf(5), aegis-connect.conf(5)) and
# --check-config: keys are the long option names; the command line wins; an unknown key, a bad
# value, a key set twice or a line that is not "name = value" stops the start with exit 6 and
# FILE:LINE; --check-config reads the file and everything it names and exits 0, or 6 with one
# line per problem. The example configurations in packaging/ are what the pages describe.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"
for tool in "$gateway" "$connect" "$stat" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done


for who in gateway host42; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")" >"$TEST_TMP/authorized"

# --- the gateway -----------------------------------------------------------------------------------------

conf=$TEST_TMP/gateway.conf
cat >"$conf" <<CONF
# a comment, then a blank line

listen = 127.0.0.1:0
identity = $TEST_TMP/gateway
authorized=$TEST_TMP/authorized
state-dir = $TEST_TMP/gw-state
max-sessions = 5
CONF
expect_exit 0 "$gateway" --config "$conf" --check-config
expect_eq "$out" "aegis-gateway: the configuration is fine" "--check-config"
expect_eq "$err" "" "--check-config's stderr"

# It starts from the file alone; the command line wins over the file (--listen).
"$gateway" --config "$conf" --listen 127.0.0.1:0 --state-dir "$TEST_TMP/gw-state2" 2>>"$TEST_TMP/gateway.log" &
at_exit kill -KILL $!
wait_for "the gateway to listen" 20 grep -q "listening on 127.0.0.1:" "$TEST_TMP/gateway.log"
[[ -d $TEST_TMP/gw-state2 && ! -e $TEST_TMP/gw-state ]] || fail "--state-dir on the command line did not win"
check_passed
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TEST_TMP/gateway.log" | head -1)
[[ -n $port ]] || fail "no port in the gateway's log"

# An unknown key: exit 6 naming the file and the line, one stderr line.
printf 'listen = 127.0.0.1:0\nno-such-key = 1\n' >"$TEST_TMP/unknown.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/unknown.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "$TEST_TMP/unknown.conf:2: unknown option 'no-such-key'"
# A bad value, out of its range: the same.
printf '\n\nmax-sessions = 0\n' >"$TEST_TMP/range.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/range.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "$TEST_TMP/range.conf:3:"
expect_contains "$err" "max-sessions"
# A line that is not name = value, a key set twice, a section.
printf 'listen\n' >"$TEST_TMP/syntax.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/syntax.conf"
expect_contains "$err" "$TEST_TMP/syntax.conf:1: 'listen' is not 'name = value'"
printf 'replay-rate = 1\nreplay-rate = 2\n' >"$TEST_TMP/twice.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/twice.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "$TEST_TMP/twice.conf:2: 'replay-rate' is set twice (first on line 1)"
printf '[gateway]\n' >"$TEST_TMP/section.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/section.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "section.conf:1: sections are not used"
# Options that are not settings are not taken from a file.
printf 'help = 1\n' >"$TEST_TMP/help.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/help.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "help.conf:1: unknown option 'help'"
# A file that is not there.
expect_error 6 "$gateway" --config "$TEST_TMP/missing.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "missing.conf: cannot read it"
# Several problems: the start names the first and counts the rest.
printf 'bogus = 1\nmax-sessions = many\n' >"$TEST_TMP/two.conf"
expect_error 6 "$gateway" --config "$TEST_TMP/two.conf" --identity x --authorized y --state-dir z
expect_contains "$err" "two.conf:1: unknown option 'bogus' (and 1 more problems: see aegis-gateway --check-config)"

# --check-config lists every problem, of the file and of what it names, one per line.
printf 'identity = %s\nauthorized = %s\nbogus = 1\nmax-sessions = many\ntls-cert = %s\ntls-key = %s\n' \
    "$TEST_TMP/no-key" "$TEST_TMP/no-authorized" "$TEST_TMP/no-cert.pem" "$TEST_TMP/no-key.pem" >"$TEST_TMP/bad.conf"
expect_exit 6 "$gateway" --config "$TEST_TMP/bad.conf" --check-config
expect_lines 6 "$err" "--check-config's problems"
while IFS= read -r line; do
    expect_match "$line" '^aegis-gateway: error: ' "a --check-config line"
done <<<"$err"
expect_contains "$err" "bad.conf:3: unknown option 'bogus'"
expect_contains "$err" "bad.conf:4:"
expect_contains "$err" "--state-dir"
expect_contains "$err" "no-key"
expect_contains "$err" "no-authorized"
expect_contains "$err" "no-cert.pem"
expect_eq "$out" "" "--check-config's stdout when it finds problems"

# --- the broker ------------------------------------------------------------------------------------------

cconf=$TEST_TMP/connect.conf
sock=$TEST_TMP/broker.sock
cat >"$cconf" <<CONF
url = ws://127.0.0.1:$port/
identity = $TEST_TMP/host42
backend-key = $TEST_TMP/gateway.pub
socket = $sock
state-dir = $TEST_TMP/state
heartbeat = 0
no-wait = true
CONF
expect_exit 0 "$connect" --config "$cconf" --check-config
expect_eq "$out" "aegis-connect: the configuration is fine" "--check-config"
# Started from the file, detached; the URL comes from it too.
expect_exit 0 "$connect" --config "$cconf"
at_exit "$connect" --stop --socket "$sock"
wait_for "the broker to connect" 20 "$stat" --socket "$sock" --check
check_passed
# --stop finds the socket through the same file.
expect_exit 0 "$connect" --config "$cconf" --stop
expect_contains "$out" "stopped the broker on $sock"

printf 'url = ws://127.0.0.1:%s/\nbackend-key = %s\nidentity = %s\ntimeout = 0\n' "$port" \
    "$TEST_TMP/gateway.pub" "$TEST_TMP/host42" >"$TEST_TMP/c-range.conf"
expect_error 6 "$connect" --config "$TEST_TMP/c-range.conf" --socket "$sock"
expect_contains "$err" "c-range.conf:4:"
expect_contains "$err" "timeout"
printf 'url = ftp://x/\nbackend-key = %s\nidentity = %s\nsocket-group = no-such-group-%s\nwhatever = 1\n' \
    "$TEST_TMP/missing.pub" "$TEST_TMP/missing-id" "$$" >"$TEST_TMP/c-bad.conf"
expect_exit 6 "$connect" --config "$TEST_TMP/c-bad.conf" --check-config
expect_lines 5 "$err" "--check-config's problems"
expect_contains "$err" "c-bad.conf:5: unknown option 'whatever'"
expect_contains "$err" "ftp://x/"
expect_contains "$err" "missing.pub"
expect_contains "$err" "missing-id"
expect_contains "$err" "no-such-group-$$"

# --- the examples in packaging/ are valid files of their tools ---------------------------------------------

for tool in gateway connect; do
    example=$AEGIS_SOURCE_DIR/packaging/config/$tool.conf
    [[ -f $example ]] || fail "no example $example"
    # The keys they name do not exist here: only the file's own problems are counted.
    run "$AEGIS_BIN/aegis-$tool" --config "$example" --check-config
    expect_not_contains "$err" "$example:" "problems of the example $tool.conf"
done

summary
