#!/usr/bin/env bash
# aegis-stat (human, --json, --prometheus, --check thresholds) and aegis-queue against a real
# gateway and brokers on 127.0.0.1; durable subscriptions with --drain. The queue operations and
# durable cursors are checked only when the broker supports them (skipped with a note otherwise).
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
json_field() { "$python" -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }
state_of() { "$stat" --json --socket "$1" | json_field state; }

for who in gateway host42 soc; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
gateway_fp=$("$keygen" -l -f "$TEST_TMP/gateway.pub" | cut -d' ' -f1)
{
    echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")"
    echo "role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
} >"$TEST_TMP/authorized"
glog=$TEST_TMP/gateway.log
"$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
    --state-dir "$TEST_TMP/gw-state" 2>>"$glog" &
gateway_pid=$!
at_exit kill -KILL "$gateway_pid"
wait_for "the gateway to listen" grep -q "listening on 127.0.0.1:" "$glog"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$glog" | head -1)
url="ws://127.0.0.1:$port/"
for who in host42 soc; do
    mkdir -p "$TEST_TMP/b-$who"
    expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/$who" --backend-key "$TEST_TMP/gateway.pub" \
        --socket "$TEST_TMP/b-$who/broker.sock" --state-dir "$TEST_TMP/b-$who/state" --backoff-min 0.2 --backoff-max 1 --timeout 20 --heartbeat 0.5
    at_exit "$connect" --stop --socket "$TEST_TMP/b-$who/broker.sock"
done
a_sock=$TEST_TMP/b-host42/broker.sock
b_sock=$TEST_TMP/b-soc/broker.sock

# --- no broker ---------------------------------------------------------------------------------------
expect_error 3 "$stat" --socket "$TEST_TMP/none.sock"
expect_exit 3 "$stat" --check --socket "$TEST_TMP/none.sock"
expect_match "$out" '^AEGIS UNKNOWN - ' "--check without a broker"
expect_error 3 "$queue" ls --socket "$TEST_TMP/none.sock"
expect_exit 3 "$stat" --json --check --socket "$a_sock"
expect_eq "$out" "AEGIS UNKNOWN - --json, --prometheus and --check cannot be combined" "a usage error under --check"
expect_error 2 "$queue" frobnicate --socket "$a_sock"
expect_error 2 "$queue" drop --socket "$a_sock"
expect_error 6 "$queue" show nothex --socket "$a_sock"

# --- connected: human, --json, --prometheus, --check OK ----------------------------------------------------
expect_exit 0 "$stat" --socket "$a_sock"
expect_match "$out" 'state: +connected' "human status"
expect_contains "$out" "$url  $gateway_fp" "human status"
expect_contains "$out" "host42 (agent)" "human status"
expect_match "$out" 'queue: +0 waiting, 0 in flight' "human status"
expect_exit 0 "$stat" --json --socket "$a_sock"
expect_eq "$(json_field state <<<"$out")" connected "--json state"
expect_eq "$(json_field assigned_id <<<"$out")" host42 "--json assigned_id"
expect_eq "$(json_field backend_fingerprint <<<"$out")" "$gateway_fp" "--json backend_fingerprint"
expect_eq "$(json_field queue.waiting <<<"$out")" 0 "--json queue.waiting"
expect_exit 0 "$stat" --prometheus --socket "$a_sock"
expect_contains "$out" $'# TYPE aegis_broker_up gauge\naegis_broker_up 1' "--prometheus"
expect_contains "$out" $'aegis_broker_connected 1' "--prometheus"
expect_match "$out" $'# HELP aegis_broker_queue_waiting [^\n]+\n# TYPE aegis_broker_queue_waiting gauge\naegis_broker_queue_waiting 0' "--prometheus"
expect_exit 0 "$stat" --check --warn-queue 2 --crit-queue 5 --crit-disconnected 1 --socket "$a_sock"
expect_match "$out" '^AEGIS OK - connected, queue 0.*\| queue=0;2;5;0' "--check"
run timeout 1.5 "$stat" --watch 0.2 --socket "$a_sock"
(($(grep -c 'state: ' <<<"$out") >= 2)) || fail "--watch did not redraw: $out"
check_passed

# --- acknowledged messages leave the state file by themselves --------------------------------------------
# The backend broker sends no heartbeats, so nothing else commits: the removal must come on its own.
rows_on_file() {
    "$python" -c 'import sqlite3,sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("select count(*) from messages where channel = ?", (sys.argv[2],)).fetchone()[0])' "$@"
}
none_left() { [[ $(rows_on_file "$TEST_TMP/b-soc/state/queue.db" backend.host42.removed) == 0 ]]; }
for n in 1 2 3; do expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.removed -m "r$n"; done
wait_for "the acknowledged messages to leave the state file" none_left
check_passed

# --- durable subscriptions, when the broker has them --------------------------------------------------------
run "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
if [[ $status == 1 && $err == *"does not support durable subscriptions"* ]] || [[ $err == *"unknown"* ]]; then
    echo "note: this broker does not support durable subscriptions; --durable/--drain not exercised ($err)"
else
    [[ $status == 0 ]] || fail "the first --drain failed"
    check_passed
    for n in 1 2 3; do expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.durable -m "d$n"; done
    sleep 1
    expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
    expect_eq "$out" $'d1\nd2\nd3' "the first drain after sending"
    expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
    expect_eq "$out" "" "the second drain"
fi

# --- the gateway gone: the queue grows; --check warns, then is critical ---------------------------------------
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
wait_for "the broker to notice the gateway is gone" test "$(state_of "$a_sock")" != connected
# A heartbeat the broker queued just before the gateway went expires soon after (a dead letter
# no one keeps): the count starts from an empty queue.
queue_empty() { [[ $("$stat" --json --socket "$a_sock" | json_field queue.waiting) == 0 ]]; }
wait_for "the last heartbeat to expire" queue_empty
queued=3
for n in 1 2 3; do expect_exit 0 "$send" --socket "$a_sock" agent.host42.queued -m "q$n"; done
expect_exit 1 "$stat" --check --warn-queue 2 --socket "$a_sock"
expect_match "$out" "^AEGIS WARNING - [a-z_]+.*queue $queued.*\\| queue=$queued;2;;0" "--check over --warn-queue"
expect_exit 2 "$stat" --check --warn-queue 1 --crit-queue 2 --socket "$a_sock"
expect_match "$out" "^AEGIS CRITICAL - .*queue $queued" "--check over --crit-queue"
sleep 1.2
heartbeat=$("$stat" --json --socket "$a_sock" | json_field last_heartbeat_ms)
if [[ $heartbeat == None || $heartbeat == 0 ]]; then
    echo "note: this broker does not report its last heartbeat; --crit-disconnected can only warn"
    expect_exit 1 "$stat" --check --crit-disconnected 1 --socket "$a_sock"
    expect_match "$out" '^AEGIS WARNING - [a-z_]+ for an unknown time' "--check disconnected, time unknown"
else
    expect_exit 2 "$stat" --check --crit-disconnected 1 --socket "$a_sock"
    expect_match "$out" '^AEGIS CRITICAL - [a-z_]+ for [0-9]' "--check disconnected too long"
    expect_exit 1 "$stat" --check --crit-disconnected 3600 --socket "$a_sock"
fi
expect_exit 0 "$stat" --socket "$a_sock"
expect_match "$out" "queue: +$queued waiting" "human status while disconnected"

# --- the queue operations, when the broker has them ------------------------------------------------------------
run "$queue" stats --socket "$a_sock"
if [[ $status == 1 && $err == *"does not support queue operations"* ]]; then
    echo "note: this broker does not support the queue operations; aegis-queue not exercised ($err)"
    expect_lines 1 "$err" "aegis-queue's error"
else
    [[ $status == 0 ]] || fail "aegis-queue stats failed"
    expect_match "$out" "waiting: +$queued" "queue stats"
    expect_exit 0 "$queue" ls --json --socket "$a_sock"
    ids=$("$python" -c 'import json,sys; [print(m["message_id"]) for m in json.load(sys.stdin) if m["channel"] == "agent.host42.queued"]' <<<"$out")
    expect_lines 3 "$ids" "queued ids"
    first=$(head -1 <<<"$ids")
    expect_exit 0 "$queue" show "$first" --socket "$a_sock"
    expect_match "$out" 'q[123]' "show"
    expect_exit 0 "$queue" drop "$first" --socket "$a_sock"
    expect_exit 0 "$queue" ls --socket "$a_sock"
    expect_not_contains "$out" "$first" "ls after drop"
    expect_error 1 "$queue" show "$first" --socket "$a_sock"
    expect_exit 0 "$queue" retry --dead --socket "$a_sock"
    expect_error 2 "$queue" purge --all --socket "$a_sock" </dev/null
    expect_exit 0 "$queue" purge --all --yes --socket "$a_sock"
    expect_exit 0 "$queue" ls --socket "$a_sock"
    expect_eq "$out" "no messages" "ls after purge"
fi

# --wait-ack while the gateway is away: exit 5 at the --timeout.
expect_error 5 "$send" --socket "$a_sock" --wait-ack --timeout 500ms agent.host42.late -m late

summary
