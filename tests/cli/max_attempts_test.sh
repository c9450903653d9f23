#!/usr/bin/env bash
# aegis-connect --max-attempts N: a message the gateway refuses for a retryable reason N times
# becomes a dead letter "gave up after N attempts: <the gateway's reason>", shown by aegis-queue,
# and a --wait-ack sender waiting for it fails with exit 1. The gateway's state directory is a
# small tmpfs filled to the brim, so it answers every publish with `internal` (it cannot store
# it). Without the option the message stays queued. Needs root (mount).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tiny=$TEST_TMP/tiny
mkdir -p "$tiny"
if [[ $(id -u) != 0 ]] || ! mount -t tmpfs -o size=4m tmpfs "$tiny" 2>/dev/null; then
    skip "cannot mount a small tmpfs here (needs root)"
fi
at_exit umount -l "$tiny"


stat_has() { "$stat" --socket "$1" --json 2>/dev/null | grep -Eq "$2"; }
# field SOCKET ID NAME: a member of the message aegis-queue shows
field() { "$queue" --socket "$1" --json show "$2" | "$python" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"; }
retried_thrice() { (($(field "$1" "$2" attempts) >= 3)); }
# dead_with SOCKET TEXT: a dead letter whose line shows TEXT
dead_with() { "$queue" --socket "$1" ls --state dead | grep -q "$2"; }

make_identities gateway host42 host43 soc
authorize agent host42
authorize agent host43
authorize backend soc
start_gateway --state-dir "$tiny/gw-state"

timing=(--backoff-max 0.5 --heartbeat 0)
start_broker host42 "${timing[@]}" --max-attempts 2
start_broker host43 "${timing[@]}" # no --max-attempts: never gives up
start_broker soc "${timing[@]}"
"$sub" --socket "$TEST_TMP/soc.sock" 'agent.*.tests' >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
at_exit kill $!
wait_for "the subscription" 20 stat_has "$TEST_TMP/soc.sock" '"agent\.\*\.tests"'
expect_exit 0 "$send" --socket "$TEST_TMP/host42.sock" --wait-ack agent.host42.tests -m before
wait_for "the first message" 20 grep -qx before "$TEST_TMP/sub.out"

# --- the gateway's disk is full: every publish is refused with `internal` -------------------------
dd if=/dev/zero of="$tiny/filler" bs=4k 2>/dev/null # until no byte is left
expect_exit 0 "$send" --socket "$TEST_TMP/host42.sock" --print-id agent.host42.tests -m doomed
doomed=$out
wait_for "the message to become a dead letter" 30 dead_with "$TEST_TMP/host42.sock" "$doomed"
expect_eq "$(field "$TEST_TMP/host42.sock" "$doomed" state)" dead "the given-up message's state"
expect_eq "$(field "$TEST_TMP/host42.sock" "$doomed" attempts)" 2 "the given-up message's attempts"
expect_contains "$(field "$TEST_TMP/host42.sock" "$doomed" dead_reason)" \
    "gave up after 2 attempts: internal error at the peer: the gateway could not store the batch" "the dead letter's reason"
run "$queue" --socket "$TEST_TMP/host42.sock" ls --state dead
expect_contains "$out" "gave up after 2 attempts" "aegis-queue ls --state dead"

# A --wait-ack sender waiting for such a message is told when it is given up.
expect_error 1 "$send" --socket "$TEST_TMP/host42.sock" --wait-ack --timeout 30s agent.host42.tests -m waited
expect_contains "$err" "gave up after 2 attempts: internal error at the peer"

# Without --max-attempts the same refusals go on: the message stays queued (not dead).
expect_exit 0 "$send" --socket "$TEST_TMP/host43.sock" --print-id agent.host43.tests -m patient
patient=$out
wait_for "three refusals of host43's message" 30 retried_thrice "$TEST_TMP/host43.sock" "$patient"
expect_not_contains "$(field "$TEST_TMP/host43.sock" "$patient" state)" dead "host43's message without --max-attempts"

# --- space again: what was not given up arrives --------------------------------------------------
rm -f "$tiny/filler"
wait_for "the patient message" 60 grep -qx patient "$TEST_TMP/sub.out"
expect_not_contains "$(cat "$TEST_TMP/sub.out")" "doomed" "the given-up message's delivery"

summary
