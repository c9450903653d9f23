#!/usr/bin/env bash
# A refused identity is loud, and comes back by itself: the gateway drops host42 (authorized
# file edited, SIGHUP). Its broker goes to state "refused" with the reason and keeps asking at
# its maximum backoff; a live aegis-sub ends with exit 4 and the reason, a new one is refused
# (exit 4); aegis-send still queues (exit 0) and says in one stderr line that nothing is
# delivered; aegis-stat --check is CRITICAL. The key authorized again (SIGHUP), the broker
# reconnects without help and the messages queued meanwhile arrive: lost 0, duplicated 0.
# A refusal of the very first handshake still fails aegis-connect (exit 4).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stat_has() { "$stat" --socket "$1" --json 2>/dev/null | grep -Eq "$2"; }
count_in() { grep -c -- "$1" "$2"; }
more_than() { (($(count_in "$1" "$2") > $3)); }

# --- keys, gateway, brokers -----------------------------------------------------------------------

make_identities gateway host42 soc stranger
authorize agent host42
authorize backend soc
auth=$TEST_TMP/authorized
agent_line=$(sed -n 1p "$auth")
backend_line=$(sed -n 2p "$auth")
start_gateway
glog=$gateway_log
url=$gateway_url
start_broker host42 --heartbeat 0
a_sock=$broker_sock
start_broker soc --heartbeat 0
b_sock=$broker_sock

"$sub" --socket "$b_sock" 'agent.host42.>' >"$TEST_TMP/backend-sub.out" 2>"$TEST_TMP/backend-sub.err" &
at_exit kill $!
wait_for "the backend's subscription" 20 subscribed "$b_sock" 'agent.host42.>'
# A live subscriber on the agent, without -W.
"$sub" --socket "$a_sock" 'backend.host42.>' >"$TEST_TMP/agent-sub.out" 2>"$TEST_TMP/agent-sub.err" &
agent_sub=$!
at_exit kill "$agent_sub"
wait_for "the agent's subscription" 20 subscribed "$a_sock" 'backend.host42.>'

# --- revoked ------------------------------------------------------------------------------------------

echo "$backend_line" >"$auth"
kill -HUP "$gateway_pid"
wait_for "the gateway to revoke host42" 20 grep -q "revoked id=host42" "$glog"
wait_for "the agent broker to say refused" 20 stat_has "$a_sock" '"state": *"refused"'
run "$stat" --socket "$a_sock" --json
expect_match "$out" '"reason": *"(revoked|unknown_identity)"' "the refusal in aegis-stat --json"
run "$stat" --socket "$a_sock"
expect_match "$out" "state: +refused" "aegis-stat"
expect_exit 2 "$stat" --socket "$a_sock" --check
expect_match "$out" "^AEGIS CRITICAL - refused: " "aegis-stat --check"

# The live subscriber ends with the reason; a new one is refused at once.
wait_for "the live aegis-sub to end" 20 gone "$agent_sub"
wait "$agent_sub"
code=$?
expect_eq "$code" 4 "the exit status of the live aegis-sub"
live_err=$(cat "$TEST_TMP/agent-sub.err")
expect_lines 1 "$live_err" "the live aegis-sub's stderr"
expect_match "$live_err" "^aegis-sub: error: .*refuses this broker's identity" "the live aegis-sub's stderr"
expect_error 4 "$sub" --socket "$a_sock" 'backend.host42.>'
expect_match "$err" "(revoked|unknown_identity)" "aegis-sub while refused"

# aegis-send queues, exit 0, and says once that nothing is delivered.
expect_exit 0 "$send" --socket "$a_sock" agent.host42.tests -m "queued-0"
expect_lines 1 "$err" "aegis-send's stderr while refused"
expect_match "$err" "^aegis-send: warning: queued; .*refuses this broker's identity.*nothing is delivered" \
    "aegis-send's stderr while refused"
printf 'queued-%s\n' 1 2 3 >"$TEST_TMP/lines"
expect_exit 0 "$send" --socket "$a_sock" -l agent.host42.tests <"$TEST_TMP/lines"
expect_lines 1 "$err" "aegis-send -l's stderr while refused"
expect_exit 4 "$send" --socket "$a_sock" --wait-ack --timeout 10 agent.host42.tests -m "never queued"
expect_match "$err" "(revoked|unknown_identity)" "aegis-send --wait-ack while refused"

# It keeps asking: refused again and again by the gateway, at the maximum backoff (1 s here).
tries=$(count_in "reason=unknown_identity" "$glog")
wait_for "the refused broker to try again" 10 more_than "reason=unknown_identity" "$glog" $((tries + 1))
stat_has "$a_sock" '"state": *"refused"' || fail "the broker left the refused state while still refused"
check_passed
expect_exit 0 "$stat" --socket "$b_sock" --check # the backend is unaffected
grep -q "queued-" "$TEST_TMP/backend-sub.out" && fail "a message got through while refused"
check_passed

# --- authorized again ---------------------------------------------------------------------------------

printf '%s\n%s\n' "$agent_line" "$backend_line" >"$auth"
kill -HUP "$gateway_pid"
wait_for "the agent broker to come back" 20 stat_has "$a_sock" '"state": *"connected"'
all_four() { (($(grep -c '^queued-' "$TEST_TMP/backend-sub.out") >= 4)); }
wait_for "the messages queued while refused" 20 all_four
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.tests -m "marker" # comes after any copy
expect_eq "$err" "" "aegis-send's stderr once connected"
wait_for "the marker" 20 grep -qx "marker" "$TEST_TMP/backend-sub.out"
received=$(grep -c '^queued-' "$TEST_TMP/backend-sub.out")
dup=$(grep '^queued-' "$TEST_TMP/backend-sub.out" | sort | uniq -d | wc -l)
lost=$(comm -23 <(printf 'queued-%s\n' 0 1 2 3) <(grep '^queued-' "$TEST_TMP/backend-sub.out" | sort -u) | wc -l)
echo "refused, then authorized again: queued=4 received=$received duplicated=$dup lost=$lost"
expect_eq "$lost" 0 "lost"
expect_eq "$dup" 0 "duplicated"
expect_not_contains "$(cat "$TEST_TMP/backend-sub.out")" "never queued" "the backend's messages"
expect_exit 0 "$stat" --socket "$a_sock" --check
"$sub" --socket "$a_sock" -W 20 -C 1 'backend.host42.>' >"$TEST_TMP/again.out" 2>"$TEST_TMP/again.err" &
sub_again=$!
wait_for "a new agent subscription" 20 subscribed "$a_sock" 'backend.host42.>'
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "welcome back"
wait "$sub_again" || fail "aegis-sub after the key came back failed: $(cat "$TEST_TMP/again.err")"
expect_eq "$(cat "$TEST_TMP/again.out")" "welcome back" "aegis-sub after the key came back"

# --- refused at the first handshake: aegis-connect fails, as before -----------------------------------

expect_error 4 "$connect" "$url" --identity "$TEST_TMP/stranger" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/s.sock" --state-dir "$TEST_TMP/stranger-state" --backoff-min 0.2 --backoff-max 1 --timeout 20
expect_contains "$err" "unknown identity" "aegis-connect with an unknown key"
[[ ! -S $TEST_TMP/s.sock ]] || fail "the refused broker left its socket behind"
check_passed

summary
