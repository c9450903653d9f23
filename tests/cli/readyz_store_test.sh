#!/usr/bin/env bash
# GET /readyz follows the gateway's store for real: 200 while commits succeed, 503 with the
# reason once a commit failed (its state directory is a small tmpfs filled to the brim and a
# publish is attempted), 200 again once space is freed and a commit succeeded. Needs root (mount).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# start_gateway keeps its state in $TEST_TMP/gateway-state: that directory is the tmpfs.
tiny=$TEST_TMP/gateway-state
mkdir -m 700 "$tiny"
if [[ $(id -u) != 0 ]] || ! mount -t tmpfs -o size=4m,mode=0700 tmpfs "$tiny" 2>/dev/null; then
    skip "cannot mount a small tmpfs here (needs root)"
fi
at_exit umount -l "$tiny"

make_identities gateway host1 soc
authorize agent host1
authorize backend soc
start_gateway --admin 127.0.0.1:0
readyz() { admin_http GET /readyz; }
expect_eq "$(readyz)" "200 ready" "GET /readyz before the disk fills"

start_broker host1 --heartbeat 0
host1_sock=$broker_sock
# A subscriber, so that publishes are stored for it.
start_broker soc --heartbeat 0
soc_sock=$broker_sock
"$sub" --socket "$soc_sock" 'agent.*.tests' >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
wait_for "the subscription" 20 subscribed "$soc_sock" 'agent.*.tests'
expect_exit 0 "$send" --socket "$host1_sock" --wait-ack agent.host1.tests -m stored
wait_for "the first message" 20 grep -qx stored "$TEST_TMP/sub.out"
expect_eq "$(readyz)" "200 ready" "GET /readyz after a stored publish"

# The disk is full: the next publish cannot be committed.
dd if=/dev/zero of="$tiny/filler" bs=4k 2>/dev/null # until no byte is left
expect_exit 0 "$send" --socket "$host1_sock" agent.host1.tests -m "while full"
not_ready() { [[ $(readyz) == "503 not ready: the last commit of the state file failed"* ]]; }
wait_for "GET /readyz to answer 503" 30 not_ready
expect_match "$(readyz)" "^503 not ready: the last commit of the state file failed" "GET /readyz while the disk is full"
expect_contains "$(cat "$gateway_log")" "disk full" "the gateway log while the disk is full"

# Space again: the broker's retry is committed, and the gateway is ready again.
rm -f "$tiny/filler"
ready() { [[ $(readyz) == "200 ready" ]]; }
wait_for "GET /readyz to answer 200 again" 30 ready
expect_exit 0 "$send" --socket "$host1_sock" --wait-ack agent.host1.tests -m "after"
wait_for "the message sent while the disk was full" 20 grep -qx "while full" "$TEST_TMP/sub.out"
expect_eq "$(readyz)" "200 ready" "GET /readyz after space was freed"

summary
