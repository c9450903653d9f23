#!/usr/bin/env bash
# packaging/logrotate/aegis-connect rotates the logs of detached brokers: logrotate moves the log
# away and sends SIGHUP, and the broker, still running, starts the new file itself (0600) and
# says so there. The test's copy of the file points at the test's directory and signals only the
# test's broker (the shipped one signals every aegis-connect: SIGHUP never stops a broker).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"
if ! command -v logrotate >/dev/null; then
    echo "SKIP: logrotate is missing (scripts/deps.sh installs it)"
    exit 77
fi
for tool in "$connect" "$stat" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done


shipped=$AEGIS_SOURCE_DIR/packaging/logrotate/aegis-connect
[[ -f $shipped ]] || fail "no $shipped"
expect_contains "$(cat "$shipped")" "/var/log/aegis/*.log" "the shipped logrotate file"
expect_contains "$(cat "$shipped")" 'pids=$(pidof aegis-connect) && kill -HUP $pids' "the shipped logrotate file"

for who in gateway host42; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
logs=$TEST_TMP/log
mkdir -m 0750 "$logs"
sock=$TEST_TMP/b.sock
# Detached, with no gateway there (port 9): --no-wait returns once the socket is up.
expect_exit 0 "$connect" ws://127.0.0.1:9/ --no-wait --identity "$TEST_TMP/host42" \
    --backend-key "$TEST_TMP/gateway.pub" --socket "$sock" --state-dir "$TEST_TMP/state" \
    --backoff-min 5 --backoff-max 5 --heartbeat 0 --log "$logs/broker.log"
at_exit "$connect" --stop --socket "$sock"
pid=$("$stat" --socket "$sock" --json | sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p')
[[ -n $pid ]] || fail "no pid in the broker's status"
wait_for "the broker's log" 10 grep -q "listening on" "$logs/broker.log"

sed -e "s|/var/log/aegis/|$logs/|" -e "s|\$(pidof aegis-connect)|$pid|" "$shipped" >"$TEST_TMP/logrotate.conf"
expect_exit 0 logrotate --state "$TEST_TMP/logrotate.state" --force "$TEST_TMP/logrotate.conf"
[[ -f $logs/broker.log.1 ]] || fail "logrotate did not move the log: $(ls "$logs")"
expect_contains "$(cat "$logs/broker.log.1")" "listening on" "the rotated log"
wait_for "the new log" 10 grep -q "received SIGHUP; log file reopened" "$logs/broker.log"
expect_mode 600 "$logs/broker.log"
kill -0 "$pid" || fail "the broker did not survive the rotation"
check_passed
expect_exit 0 "$stat" --socket "$sock" --json

summary
