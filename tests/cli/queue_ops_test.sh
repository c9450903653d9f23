#!/usr/bin/env bash
# The limits agree end to end: a payload of exactly the limit arrives and one byte more is
# refused at once with its real size.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gateway=$AEGIS_BIN/aegis-gateway
connect=$AEGIS_BIN/aegis-connect
send=$AEGIS_BIN/aegis-send
sub=$AEGIS_BIN/aegis-sub
stat=$AEGIS_BIN/aegis-stat
queue=$AEGIS_BIN/aegis-queue
keygen=$AEGIS_BIN/aegis-keygen
python=$(command -v python3) || fail "python3 is needed"

wait_for() { # wait_for DESCRIPTION COMMAND...: retries COMMAND for up to 20 seconds
    local what=$1 i
    shift
    for ((i = 0; i < 200; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
# subscribed SOCKET PATTERN: the broker's gateway subscription includes PATTERN
subscribed() { "$stat" --json --socket "$1" | "$python" -c 'import json,sys; sys.exit(sys.argv[1] not in json.load(sys.stdin)["subscriptions"])' "$2"; }
# ids_in SOCKET STATE CHANNEL: the ids `aegis-queue ls --state STATE` shows for CHANNEL
ids_in() {
    "$queue" ls --json --state "$2" --socket "$1" |
        "$python" -c 'import json,sys; [print(m["message_id"]) for m in json.load(sys.stdin) if m["channel"] == sys.argv[1]]' "$3"
}
has_id() { [[ -n $(ids_in "$@") ]]; }

# --- keys, gateway, an agent broker (host42) and a backend broker (soc) ----------------------------
for who in gateway host42 soc; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
{
    echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")"
    echo "role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
} >"$TEST_TMP/authorized"
glog=$TEST_TMP/gateway.log
"$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
    --state-dir "$TEST_TMP/gw-state" 2>>"$glog" &
gateway_pid=$!
at_exit kill -KILL "$gateway_pid"
at_exit kill -CONT "$gateway_pid"
wait_for "the gateway to listen" grep -q "listening on 127.0.0.1:" "$glog"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$glog" | head -1)
url="ws://127.0.0.1:$port/"
for who in host42 soc; do
    mkdir -p "$TEST_TMP/b-$who"
    expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/$who" --backend-key "$TEST_TMP/gateway.pub" \
        --socket "$TEST_TMP/b-$who/broker.sock" --state-dir "$TEST_TMP/b-$who/state" --backoff-min 0.2 \
        --backoff-max 1 --timeout 20
    at_exit "$connect" --stop --socket "$TEST_TMP/b-$who/broker.sock"
done
a_sock=$TEST_TMP/b-host42/broker.sock
b_sock=$TEST_TMP/b-soc/broker.sock

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

summary
