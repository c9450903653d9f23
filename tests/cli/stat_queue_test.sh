#!/usr/bin/env bash
# aegis-stat (human, --json, --prometheus, --check thresholds) and aegis-queue against a real
# gateway and brokers on 127.0.0.1; durable subscriptions with --drain.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_field() { "$python" -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }

make_identities gateway host42 soc
gateway_fp=$(fingerprint "$TEST_TMP/gateway.pub")
authorize agent host42
authorize backend soc
start_gateway
url=$gateway_url
start_broker host42 --heartbeat 0.5
a_sock=$broker_sock
start_broker soc --heartbeat 0.5
b_sock=$broker_sock
b_state=$broker_state_dir

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
# The agent's heartbeat (every 0.5 s here) may be queued or in flight at any moment: one at most.
expect_match "$out" 'queue: +[01] waiting, [01] in flight' "human status"
expect_exit 0 "$stat" --json --socket "$a_sock"
expect_eq "$(json_field state <<<"$out")" connected "--json state"
expect_eq "$(json_field assigned_id <<<"$out")" host42 "--json assigned_id"
expect_eq "$(json_field backend_fingerprint <<<"$out")" "$gateway_fp" "--json backend_fingerprint"
expect_match "$(json_field queue.waiting <<<"$out")" "^[01]$" "--json queue.waiting"
expect_exit 0 "$stat" --prometheus --socket "$a_sock"
expect_contains "$out" $'# TYPE aegis_broker_up gauge\naegis_broker_up 1' "--prometheus"
expect_contains "$out" $'aegis_broker_connected 1' "--prometheus"
expect_match "$out" $'# HELP aegis_broker_queue_waiting [^\n]+\n# TYPE aegis_broker_queue_waiting gauge\naegis_broker_queue_waiting [01]' "--prometheus"
expect_exit 0 "$stat" --check --warn-queue 2 --crit-queue 5 --crit-disconnected 1 --socket "$a_sock"
expect_match "$out" '^AEGIS OK - connected, queue [01],.*\| queue=[01];2;5;0' "--check"
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
none_left() { [[ $(rows_on_file "$b_state/queue.db" backend.host42.removed) == 0 ]]; }
for n in 1 2 3; do expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.removed -m "r$n"; done
wait_for "the acknowledged messages to leave the state file" none_left
check_passed

# --- durable subscriptions -----------------------------------------------------------------------------
# The first drain makes the cursor; what is published afterwards is kept for it.
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
expect_eq "$out" "" "the first drain of a new cursor"
for n in 1 2 3; do expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.durable -m "d$n"; done
# Acknowledged by the gateway is not yet stored at the receiving broker: wait until it is.
pending_for_nightly() { "$queue" cursors --json --socket "$a_sock" | "$python" -c 'import json,sys
sys.exit(sum(c["pending"] for c in json.load(sys.stdin) if c["name"] == "nightly") != 3)'; }
wait_for "the three messages to be stored for nightly" pending_for_nightly
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
expect_eq "$out" $'d1\nd2\nd3' "the first drain after sending"
expect_exit 0 "$sub" --socket "$a_sock" --durable nightly --drain -W 10s backend.host42.durable
expect_eq "$out" "" "the second drain"

# --- the gateway gone: the queue grows; --check warns, then is critical ---------------------------------------
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
not_connected() { ! connected "$a_sock"; }
wait_for "the broker to notice the gateway is gone" not_connected
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
# The broker knows when it lost its session: --crit-disconnected counts from there, and is
# critical once that is over a second ago.
expect_match "$(status_field "$a_sock" disconnected_s)" '^[0-9]+([.][0-9]+)?$' "aegis-stat --json disconnected_s"
disconnected_over_1s() { [[ $("$stat" --check --crit-disconnected 1 --socket "$a_sock") == "AEGIS CRITICAL - "* ]]; }
wait_for "the disconnection to be over a second old" disconnected_over_1s
expect_exit 2 "$stat" --check --crit-disconnected 1 --socket "$a_sock"
expect_match "$out" '^AEGIS CRITICAL - [a-z_]+ for [0-9]' "--check disconnected too long"
expect_exit 1 "$stat" --check --crit-disconnected 3600 --socket "$a_sock"
expect_exit 0 "$stat" --socket "$a_sock"
expect_match "$out" "queue: +$queued waiting" "human status while disconnected"

# --- the queue operations ---------------------------------------------------------------------------------------
expect_exit 0 "$queue" stats --socket "$a_sock"
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

# --wait-ack while the gateway is away: exit 5 at the --timeout.
expect_error 5 "$send" --socket "$a_sock" --wait-ack --timeout 500ms agent.host42.late -m late

summary
