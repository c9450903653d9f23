#!/usr/bin/env bash
# What scripts, cron and monitoring see: an empty standard input is not a message, a reply that
# is an error is said, a --wait-ack timeout names the message that stays queued (and it is
# delivered later), and aegis-stat as a monitoring plugin and a Prometheus textfile source:
# usage errors under --check are UNKNOWN, dead-letter thresholds, the disconnected time counted
# from the disconnect, aegis_broker_up 0 without a broker, --watch without escapes into a pipe.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- aegis-stat without a broker, and its usage errors ------------------------------------------------
nosock=$TEST_TMP/none.sock
expect_exit 0 "$stat" --prometheus --socket "$nosock"
expect_eq "$out" $'# HELP aegis_broker_up 1 when the broker answered.\n# TYPE aegis_broker_up gauge\naegis_broker_up 0' \
    "--prometheus without a broker"
expect_eq "$err" "" "--prometheus without a broker: stderr"

expect_exit 3 "$stat" --check --warn-age 10 --crit-age 5 --socket "$nosock"
expect_eq "$out" "AEGIS UNKNOWN - --warn-age (10) is above --crit-age (5)" "--check with --warn-age above --crit-age"
expect_exit 3 "$stat" --check --warn-queue -1
expect_eq "$out" "AEGIS UNKNOWN - --warn-queue needs a whole number from 0 to 1000000000, not '-1'" "--check --warn-queue -1"
expect_exit 3 "$stat" --check --no-such-option
expect_match "$out" "^AEGIS UNKNOWN - .*no-such-option" "--check with an unknown option"
expect_lines 1 "$out" "--check with an unknown option"
expect_exit 3 "$stat" --check --json
expect_match "$out" "^AEGIS UNKNOWN - --json, --prometheus and --check cannot be combined" "--check --json"
expect_error 2 "$stat" --warn-age 10 --crit-age 5 --socket "$nosock"
expect_contains "$err" "--warn-age (10) is above --crit-age (5)"
expect_error 2 "$stat" --warn-dead 3 --crit-dead 2 --socket "$nosock"
expect_error 2 "$stat" --warn-queue 3 --crit-queue 2 --socket "$nosock"

# --- a gateway, an agent (host42) and a backend (soc) ------------------------------------------------
make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
glog=$gateway_log
# The agent keeps the default heartbeat (30s): its last heartbeat is older than the disconnect.
start_broker host42
a_sock=$broker_sock
start_broker soc
b_sock=$broker_sock

# --- an empty standard input is not a message ----------------------------------------------------------
expect_error 6 "$send" --socket "$a_sock" agent.host42.cron </dev/null
expect_contains "$err" "standard input is empty; nothing sent (give -m '' to send an empty message)"
expect_error 6 "$send" --socket "$a_sock" agent.host42.cron -f - </dev/null
expect_error 6 "$send" --socket "$a_sock" --request --timeout 2s agent.host42.cron </dev/null
expect_exit 0 "$send" --socket "$a_sock" --print-id agent.host42.cron -m ''
expect_match "$out" '^[0-9a-f]{32}$' "an empty message asked for with -m ''"
: >"$TEST_TMP/empty"
expect_exit 0 "$send" --socket "$a_sock" agent.host42.cron -f "$TEST_TMP/empty"
expect_exit 0 "$send" --socket "$a_sock" -l agent.host42.cron </dev/null
expect_exit 0 "$send" --socket "$a_sock" agent.host42.cron <<<"from a pipe"

# --- a reply that is an error is said on stderr ---------------------------------------------------------
"$sub" --socket "$b_sock" --exec 'echo refused here; exit 3' agent.host42.jobs >"$TEST_TMP/replier.out" 2>&1 &
replier=$!
at_exit kill "$replier"
wait_for "the replier's subscription" subscribed "$b_sock" agent.host42.jobs
expect_error 1 "$send" --socket "$a_sock" --request --timeout 20s agent.host42.jobs -m go
expect_eq "$out" "refused here" "the error reply's payload"
expect_eq "$err" "aegis-send: error: the reply is an error: exit 3" "stderr"
kill "$replier"

# --- monitoring: thresholds, --watch ---------------------------------------------------------------------
expect_exit 0 "$stat" --check --warn-dead 0 --crit-dead 5 --socket "$a_sock"
expect_match "$out" '^AEGIS OK - connected, .*dead 0 \|.* dead=0;0;5;0' "--check with dead-letter thresholds"
run timeout 1.5 "$stat" --watch 0.2 --socket "$a_sock"
(($(grep -c 'state: ' <<<"$out") >= 2)) || fail "--watch did not print again: $out"
expect_not_contains "$out" $'\033' "--watch into a pipe"

# --- the gateway gone: disconnected time, --wait-ack, dead letters ------------------------------------------
# Once the agent's last heartbeat is a few seconds old, the gateway goes.
heartbeat_old() { "$python" -c 'import sys; sys.exit(not float(sys.argv[1]) >= 4)' "$(status_field "$a_sock" last_heartbeat_age_s)"; }
# The first heartbeat goes out a heartbeat interval (30 s) after connecting.
wait_for "the agent's last heartbeat to be 4 seconds old" 60 heartbeat_old
"$sub" --socket "$b_sock" -C 1 -W 60 -F '%i %p\n' agent.host42.late >"$TEST_TMP/late.out" 2>"$TEST_TMP/late.err" &
late_sub=$!
at_exit kill "$late_sub"
wait_for "the backend's subscription" subscribed "$b_sock" agent.host42.late
kill_gateway
wait_for "the agent to notice the gateway is gone" eval '! connected "$a_sock"'
# Counted from the disconnect, not from the heartbeat, which was 4 s and more before it.
expect_exit 0 "$stat" --json --socket "$a_sock"
"$python" -c 'import json, sys; s = json.loads(sys.argv[1])
sys.exit(not s["last_heartbeat_age_s"] - s["disconnected_s"] >= 3.5)' "$out" ||
    fail "the disconnected time is counted from the last heartbeat: $out"
check_passed
expect_exit 1 "$stat" --check --crit-disconnected 3600 --socket "$a_sock"
expect_match "$out" '^AEGIS WARNING - [a-z_]+ for [0-9]+s' "--check just after the disconnect"

expect_error 5 "$send" --socket "$a_sock" --wait-ack --timeout 1s agent.host42.late -m late
expect_match "$err" 'message [0-9a-f]{32} stays queued in the broker and will be delivered later' "--wait-ack timeout"
late_id=$(grep -oE '[0-9a-f]{32}' <<<"$err")
expect_exit 0 "$queue" show "$late_id" --socket "$a_sock"
expect_contains "$out" "late" "the message left queued"

# A message whose TTL passes while the gateway is away becomes a dead letter.
expect_exit 0 "$send" --socket "$a_sock" --ttl 1ms agent.host42.expired -m gone
restart_gateway
wait_for "the agent to reconnect" connected "$a_sock"
wait "$late_sub"
expect_eq "$(cat "$TEST_TMP/late.out")" "$late_id late" "the message that stayed queued, delivered once"
dead_letters() { (($(status_field "$a_sock" queue.dead) >= 1)); }
wait_for "a dead letter" dead_letters
dead=$(status_field "$a_sock" queue.dead)
expect_exit 1 "$stat" --check --warn-dead 0 --socket "$a_sock"
expect_match "$out" "^AEGIS WARNING - connected, .*dead $dead \\|.* dead=$dead;0;;0" "--check over --warn-dead"
expect_exit 2 "$stat" --check --warn-dead 0 --crit-dead 0 --socket "$a_sock"
expect_match "$out" "^AEGIS CRITICAL - connected, .*dead $dead" "--check over --crit-dead"
expect_exit 0 "$stat" --check --warn-dead "$dead" --socket "$a_sock"

summary
