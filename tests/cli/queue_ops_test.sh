#!/usr/bin/env bash
# What the operator does to the queue reaches everyone it concerns: a dropped or purged message
# ends its --wait-ack at once; a payload of exactly the limit arrives and one byte more is
# refused at once with its real size; an expired message shows as a dead letter while the
# broker is away and is not retried blindly; durable cursors are listed, removed and never
# changed silently.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ids_in SOCKET STATE CHANNEL: the ids `aegis-queue ls --state STATE` shows for CHANNEL
ids_in() {
    "$queue" ls --json --state "$2" --socket "$1" |
        "$python" -c 'import json,sys; [print(m["message_id"]) for m in json.load(sys.stdin) if m["channel"] == sys.argv[1]]' "$3"
}
has_id() { [[ -n $(ids_in "$@") ]]; }

# --- keys, gateway, an agent broker (host42) and a backend broker (soc) ----------------------------
make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
at_exit kill -CONT "$gateway_pid"
start_broker host42
a_sock=$broker_sock
start_broker soc
b_sock=$broker_sock

# --- drop and purge --all answer every --wait-ack of what they remove, at once ---------------------
# A stopped gateway never acknowledges: what the broker sends stays in flight.
kill -STOP "$gateway_pid"
"$send" --socket "$a_sock" --wait-ack --timeout 60s agent.host42.held -m held \
    >"$TEST_TMP/held.out" 2>"$TEST_TMP/held.err" &
held_pid=$!
wait_for "the held message to be in flight" has_id "$a_sock" in_flight agent.host42.held
held_id=$(ids_in "$a_sock" in_flight agent.host42.held)
expect_exit 0 "$queue" drop "$held_id" --socket "$a_sock"
wait_for "aegis-send --wait-ack to end after the drop" gone "$held_pid"
wait "$held_pid"
expect_eq "$?" 4 "aegis-send --wait-ack of a dropped message: exit status"
expect_match "$(cat "$TEST_TMP/held.err")" "^aegis-send: error: .*dropped" "aegis-send --wait-ack of a dropped message"

"$send" --socket "$a_sock" --wait-ack --timeout 60s agent.host42.purged -m purged \
    >"$TEST_TMP/purged.out" 2>"$TEST_TMP/purged.err" &
purged_pid=$!
wait_for "the purged message to be queued" has_id "$a_sock" all agent.host42.purged
expect_exit 0 "$queue" purge --all --yes --socket "$a_sock"
wait_for "aegis-send --wait-ack to end after the purge" gone "$purged_pid"
wait "$purged_pid"
expect_eq "$?" 4 "aegis-send --wait-ack of a purged message: exit status"
expect_match "$(cat "$TEST_TMP/purged.err")" "^aegis-send: error: .*dropped" "aegis-send --wait-ack of a purged message"
kill -CONT "$gateway_pid"

# --- a payload of exactly the limit arrives; one byte more is refused at once ----------------------
limit=16777216
head -c "$limit" /dev/urandom >"$TEST_TMP/max.bin"
"$sub" --socket "$a_sock" -C 1 -W 60 -F '%l\n' backend.host42.big >"$TEST_TMP/big.out" 2>"$TEST_TMP/big.err" &
sub_pid=$!
wait_for "the big subscription" subscribed "$a_sock" backend.host42.big
expect_exit 0 "$send" --socket "$b_sock" --wait-ack --timeout 60s backend.host42.big -f "$TEST_TMP/max.bin"
wait "$sub_pid" || fail "aegis-sub of the largest payload: exit $?: $(cat "$TEST_TMP/big.err")"
expect_eq "$(cat "$TEST_TMP/big.out")" "$limit" "the largest payload's length as received"
run "$queue" ls --state dead --socket "$b_sock"
expect_eq "$out" "no messages" "dead letters after the largest payload"

{ cat "$TEST_TMP/max.bin"; printf x; } >"$TEST_TMP/over.bin"
expect_error 6 "$send" --socket "$b_sock" backend.host42.big -f "$TEST_TMP/over.bin"
expect_contains "$err" "payload of 16777217 bytes is over the limit of 16777216" "one byte over, from a file"
expect_error 6 "$send" --socket "$b_sock" backend.host42.big <"$TEST_TMP/over.bin"
expect_contains "$err" "payload of 16777217 bytes" "one byte over, from redirected standard input"
head -c 20000000 /dev/zero >"$TEST_TMP/20mb.bin"
expect_error 6 "$send" --socket "$b_sock" backend.host42.big -f "$TEST_TMP/20mb.bin"
expect_contains "$err" "payload of 20000000 bytes" "a 20 MB file"
run bash -c "cat '$TEST_TMP/20mb.bin' | '$send' --socket '$b_sock' backend.host42.big"
expect_eq "$status" 6 "a 20 MB pipe: exit status"
expect_contains "$err" "payload of 20000000 bytes" "a 20 MB pipe"
expect_exit 0 "$queue" stats --json --socket "$b_sock"
expect_eq "$("$python" -c 'import json,sys; s=json.load(sys.stdin)["stats"]; print(s["waiting"] + s["in_flight"] + s["dead"])' <<<"$out")" 0 \
    "nothing queued by the refused sends"

# --- durable cursors: a changed pattern set is refused unless reset; listed and removed ------------
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.one
expect_error 2 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.two
expect_contains "$err" "backend.host42.one" "the refusal names the stored patterns"
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.one backend.host42.one
expect_exit 0 "$queue" cursors --socket "$a_sock"
expect_match "$out" $'nightly +0 +0 .* no +backend\\.host42\\.one' "cursors"
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --reset --drain -W 10s backend.host42.two backend.host42.one
expect_exit 0 "$sub" --socket "$a_sock" --durable typo --drain -W 10s backend.host42.one
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.two -m kept
expect_exit 0 "$queue" cursors --json --socket "$a_sock"
expect_eq "$("$python" -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"], sorted(c["patterns"]), c["attached"])' <<<"$out")" \
    "nightly ['backend.host42.one', 'backend.host42.two'] False"$'\n'"typo ['backend.host42.one'] False" "cursors --json"
pending_of() { "$queue" cursors --json --socket "$a_sock" | "$python" -c 'import json,sys
print(sum(c["pending"] for c in json.load(sys.stdin) if c["name"] == sys.argv[1]))' "$1"; }
one_pending() { [[ $(pending_of nightly) == 1 ]]; }
wait_for "the message to be stored for nightly" one_pending
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.one backend.host42.two
expect_eq "$out" kept "the drain after --reset"
expect_exit 0 "$queue" cursor-rm typo --socket "$a_sock"
expect_error 1 "$queue" cursor-rm typo --socket "$a_sock"
expect_contains "$err" "no durable subscription named typo" "cursor-rm of what is gone"
expect_error 2 "$queue" cursor-rm --socket "$a_sock"
expect_exit 0 "$queue" cursors --socket "$a_sock"
expect_not_contains "$out" "typo" "cursors after cursor-rm"
"$sub" --socket "$a_sock" --durable nightly -W 60 backend.host42.one backend.host42.two >/dev/null 2>&1 &
attached_pid=$!
at_exit kill "$attached_pid"
attached() { "$queue" cursors --json --socket "$a_sock" | "$python" -c 'import json,sys
sys.exit(not any(c["attached"] for c in json.load(sys.stdin) if c["name"] == "nightly"))'; }
wait_for "nightly to be attached" attached
expect_error 1 "$queue" cursor-rm nightly --socket "$a_sock"
expect_contains "$err" "attached" "cursor-rm of an attached cursor"
kill "$attached_pid"
wait "$attached_pid" 2>/dev/null
not_attached() { ! attached; }
wait_for "nightly to be detached" not_attached
expect_exit 0 "$queue" cursor-rm nightly --socket "$a_sock"
expect_exit 0 "$queue" cursors --socket "$a_sock"
expect_eq "$out" "no durable subscriptions" "cursors after removing both"

# --- an expired message shows as expired while the broker is away, and is not retried blindly ------
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
not_connected() { ! connected "$a_sock"; }
wait_for "the broker to notice the gateway is gone" not_connected
expect_exit 0 "$send" --socket "$a_sock" --ttl 3s agent.host42.stale -m stale
expect_eq "$(ids_in "$a_sock" waiting agent.host42.stale | wc -l)" 1 "the stale message waits at first"
wait_for "the stale message to show as expired" has_id "$a_sock" dead agent.host42.stale
stale_id=$(ids_in "$a_sock" dead agent.host42.stale)
expect_exit 0 "$queue" ls --state dead --socket "$a_sock"
expect_contains "$out" "agent.host42.stale (expired)" "ls of the expired message"
expect_error 4 "$queue" retry "$stale_id" --socket "$a_sock"
expect_contains "$err" "expired" "retry of an expired message"
expect_contains "$err" "--ttl" "retry of an expired message"
expect_exit 0 "$queue" retry --dead --socket "$a_sock"
expect_contains "$out" "retrying 0 messages" "retry --dead with only expired dead letters"
expect_contains "$out" "1 expired message not retried" "retry --dead with only expired dead letters"
expect_exit 0 "$queue" retry "$stale_id" --ttl 1h --socket "$a_sock"
expect_eq "$out" "retrying 1 message" "retry --ttl"
expect_eq "$(ids_in "$a_sock" waiting agent.host42.stale)" "$stale_id" "the message waits again with a fresh TTL"
expect_error 2 "$queue" ls --ttl 1h --socket "$a_sock"

summary
