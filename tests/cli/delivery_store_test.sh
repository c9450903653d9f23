#!/usr/bin/env bash
# A receiving broker that cannot store a delivery does not acknowledge it, and gets it again
# once storing works (PROTOCOL.md §6): the backend broker's state directory is a small tmpfs
# filled to the brim while an agent sends 300 messages to a live aegis-sub. None arrives while
# the disk is full, aegis-stat shows the storing error (--check CRITICAL), and once the space is
# freed every message arrives by itself: lost 0, duplicated 0. Needs root (mount).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tiny=$TEST_TMP/tiny
mkdir -p "$tiny"
if [[ $(id -u) != 0 ]] || ! mount -t tmpfs -o size=2m tmpfs "$tiny" 2>/dev/null; then
    echo "SKIP: $TEST_NAME: cannot mount a small tmpfs here (needs root)"
    exit 0
fi
at_exit umount -l "$tiny"

gateway=$AEGIS_BIN/aegis-gateway
connect=$AEGIS_BIN/aegis-connect
sub=$AEGIS_BIN/aegis-sub
send=$AEGIS_BIN/aegis-send
stat=$AEGIS_BIN/aegis-stat
keygen=$AEGIS_BIN/aegis-keygen
for tool in "$gateway" "$connect" "$sub" "$send" "$stat" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done
N=300

wait_for() { # wait_for WHAT SECONDS COMMAND...
    local what=$1 tries=$(($2 * 10)) i
    shift 2
    for ((i = 0; i < tries; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -5 "$TEST_TMP"/*.log >&2 2>/dev/null
    fail "timed out waiting for $what"
}
stat_has() { "$stat" --socket "$1" --json 2>/dev/null | grep -Eq "$2"; }
received() { grep -c '^d-' "$TEST_TMP/sub.out"; }
all_arrived() { (($(received) >= N)); }

# --- keys, gateway, brokers -----------------------------------------------------------------------

for who in gateway host42 soc; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
auth=$TEST_TMP/authorized
{
    echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")"
    echo "role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
} >"$auth"
glog=$TEST_TMP/gateway.log
"$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$auth" --state-dir "$TEST_TMP/gw-state" \
    2>>"$glog" &
at_exit kill -KILL $!
wait_for "the gateway to listen" 20 grep -q "listening on 127.0.0.1:" "$glog"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$glog" | head -1)
url="ws://127.0.0.1:$port/"

a_sock=$TEST_TMP/a.sock
b_sock=$TEST_TMP/b.sock
timing=(--backoff-min 0.2 --backoff-max 0.5 --timeout 20 --heartbeat 0)
"$connect" "$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub" --socket "$a_sock" \
    --state-dir "$TEST_TMP/agent" "${timing[@]}" >/dev/null || fail "the agent broker did not start"
at_exit "$connect" --stop --socket "$a_sock"
# The receiving broker keeps its state on the tiny file system.
"$connect" "$url" --identity "$TEST_TMP/soc" --backend-key "$TEST_TMP/gateway.pub" --socket "$b_sock" \
    --state-dir "$tiny/state" --foreground "${timing[@]}" 2>>"$TEST_TMP/receiver.log" &
at_exit kill -KILL $!
wait_for "the receiving broker" 20 stat_has "$b_sock" '"state": *"connected"'

"$sub" --socket "$b_sock" 'agent.host42.>' >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
at_exit kill "$sub_pid"
wait_for "the subscription" 20 stat_has "$b_sock" '"agent.host42.>"'
expect_exit 0 "$send" --socket "$a_sock" agent.host42.tests -m "before"
wait_for "the first message" 20 grep -qx "before" "$TEST_TMP/sub.out"

# --- the disk fills up, 300 messages come ----------------------------------------------------------

dd if=/dev/zero of="$tiny/filler" bs=4k 2>/dev/null # until no byte is left
seq -f 'd-%.0f' 0 $((N - 1)) >"$TEST_TMP/sent"
expect_exit 0 "$send" --socket "$a_sock" -l agent.host42.tests <"$TEST_TMP/sent"
wait_for "the receiving broker to fail storing" 30 grep -q "cannot store delivered messages" "$TEST_TMP/receiver.log"
# Logged and recorded in one step, and the disk stays full: the status shows it now (checked below).
run "$stat" --socket "$b_sock"
stat_human=$out
run "$stat" --socket "$b_sock" --check
check_status=$status check_line=$out
while_full=$(received)

# --- space again ------------------------------------------------------------------------------------

rm -f "$tiny/filler"
deadline=$((SECONDS + 60))
while ! all_arrived && ((SECONDS < deadline)); do sleep 0.1; done
# A marker sent last: anything delivered twice would have come before it.
expect_exit 0 "$send" --socket "$a_sock" agent.host42.tests -m "marker"
marker_seen() { grep -qx "marker" "$TEST_TMP/sub.out"; }
deadline=$((SECONDS + 30))
while ! marker_seen && ((SECONDS < deadline)); do sleep 0.1; done

got=$(received)
dup=$(grep '^d-' "$TEST_TMP/sub.out" | sort | uniq -d | wc -l)
lost=$(comm -23 <(sort -u "$TEST_TMP/sent") <(grep '^d-' "$TEST_TMP/sub.out" | sort -u) | wc -l)
redeliveries=$(grep -c "cannot store delivered messages" "$TEST_TMP/receiver.log")
echo "disk full at the receiver: sent=$N received_while_full=$while_full received=$got duplicated=$dup lost=$lost" \
    "(store failures logged: $redeliveries)"
expect_eq "$while_full" 0 "messages shown while the disk was full"
expect_eq "$lost" 0 "lost"
expect_eq "$dup" 0 "duplicated"
marker_seen || fail "the marker after the freed space did not arrive"
check_passed
expect_contains "$stat_human" "store error:" "aegis-stat while the disk was full"
expect_contains "$stat_human" "cannot store delivered messages" "aegis-stat while the disk was full"
expect_eq "$check_status" 2 "aegis-stat --check while the disk was full"
expect_contains "$check_line" "AEGIS CRITICAL" "aegis-stat --check while the disk was full"
expect_contains "$check_line" "cannot store deliveries" "aegis-stat --check while the disk was full"
# Storing works again: the error is gone.
run "$stat" --socket "$b_sock" --json
expect_contains "$out" '"store_error": null' "aegis-stat --json after the space came back"
kill -0 "$sub_pid" 2>/dev/null || fail "the live aegis-sub ended: $(cat "$TEST_TMP/sub.err")"
check_passed

summary
