#!/usr/bin/env bash
# A receiving broker that cannot store a delivery does not acknowledge it, and gets it again
# once storing works (PROTOCOL.md §6): the backend broker's state directory is a small tmpfs
# filled to the brim while an agent sends 300 messages to a live aegis-sub. None arrives while
# the disk is full, aegis-stat shows the storing error (--check CRITICAL), and once the space is
# freed every message arrives by itself: lost 0, duplicated 0. Needs root (mount).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root "mounting a small tmpfs"
tiny=$TEST_TMP/tiny
mkdir -p "$tiny"
mount_error=$(mount -t tmpfs -o size=2m tmpfs "$tiny" 2>&1) || skip "cannot mount a small tmpfs here: $mount_error"
at_exit umount -l "$tiny"

N=300

received() { grep -c '^d-' "$TEST_TMP/sub.out"; }
all_arrived() { (($(received) >= N)); }

# --- keys, gateway, brokers -----------------------------------------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
start_broker host42 --backoff-max 0.5 --heartbeat 0
a_sock=$broker_sock
# The receiving broker keeps its state on the tiny file system.
start_broker --foreground --state-dir "$tiny/state" soc --backoff-max 0.5 --heartbeat 0
b_sock=$broker_sock
receiver_log=$TEST_TMP/soc.log

"$sub" --socket "$b_sock" 'agent.host42.>' >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
at_exit kill "$sub_pid"
wait_for "the subscription" 20 subscribed "$b_sock" 'agent.host42.>'
expect_exit 0 "$send" --socket "$a_sock" agent.host42.tests -m "before"
wait_for "the first message" 20 grep -qx "before" "$TEST_TMP/sub.out"

# --- the disk fills up, 300 messages come ----------------------------------------------------------

dd if=/dev/zero of="$tiny/filler" bs=4k 2>/dev/null # until no byte is left
seq -f 'd-%.0f' 0 $((N - 1)) >"$TEST_TMP/sent"
expect_exit 0 "$send" --socket "$a_sock" -l agent.host42.tests <"$TEST_TMP/sent"
wait_for "the receiving broker to fail storing" 30 grep -q "cannot store delivered messages" "$receiver_log"
# Logged and recorded in one step, and the disk stays full: the status shows it now (checked below).
run "$stat" --socket "$b_sock"
stat_human=$out
run "$stat" --socket "$b_sock" --check
check_status=$status check_line=$out
while_full=$(received)

# --- space again ------------------------------------------------------------------------------------

rm -f "$tiny/filler"
wait_for "every message after the space came back" 60 all_arrived
# A marker sent last: anything delivered twice would have come before it.
expect_exit 0 "$send" --socket "$a_sock" agent.host42.tests -m "marker"
marker_seen() { grep -qx "marker" "$TEST_TMP/sub.out"; }
wait_for "the marker" marker_seen

got=$(received)
dup=$(grep '^d-' "$TEST_TMP/sub.out" | sort | uniq -d | wc -l)
lost=$(comm -23 <(sort -u "$TEST_TMP/sent") <(grep '^d-' "$TEST_TMP/sub.out" | sort -u) | wc -l)
redeliveries=$(grep -c "cannot store delivered messages" "$receiver_log")
echo "disk full at the receiver: sent=$N received_while_full=$while_full received=$got duplicated=$dup lost=$lost" \
    "(store failures logged: $redeliveries)"
expect_eq "$while_full" 0 "messages shown while the disk was full"
expect_eq "$lost" 0 "lost"
expect_eq "$dup" 0 "duplicated"
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
