#!/usr/bin/env bash
# A durable subscription asked for while the broker has never had a session (so it does not yet
# know what its identity may subscribe to) and then denied once the session is up (by the gateway,
# or by the policy the broker learnt from it): the client is told why (exit 4) and the broker
# keeps no cursor with those patterns. Kept, they would
# join every later subscription set the broker sends, and the gateway would refuse all of them:
# a plain subscription asked for afterwards must work.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
kill_gateway # its port is known: the brokers start without a gateway to talk to
start_broker host42 --no-wait
a_sock=$broker_sock
start_broker soc --no-wait
b_sock=$broker_sock

# A backend may subscribe to agent.> only; its broker does not know that before a session.
"$sub" --socket "$b_sock" --durable nightly -W 60s backend.all.reports >"$TEST_TMP/denied.out" \
    2>"$TEST_TMP/denied.err" &
denied_pid=$!
has_cursor() { "$queue" cursors --json --socket "$b_sock" | grep -q '"nightly"'; }
wait_for "the broker to hold the durable request" 20 has_cursor
restart_gateway
wait_for "the backend broker to connect" 30 connected "$b_sock"
wait_for "the durable subscriber to be answered" 30 gone "$denied_pid"
wait "$denied_pid"
expect_eq "$?" 4 "exit status of the denied durable subscriber"
expect_match "$(cat "$TEST_TMP/denied.err")" "^aegis-sub: error: access denied: .*may not subscribe to backend\.all\.reports$" \
    "its error"
expect_exit 0 "$queue" cursors --json --socket "$b_sock"
expect_not_contains "$out" '"nightly"' "the cursors after the denial"

# A plain subscription afterwards reaches the gateway and gets what the agent sends.
"$sub" --socket "$b_sock" -C 1 -W 30s agent.host42.after >"$TEST_TMP/after.out" 2>"$TEST_TMP/after.err" &
after_pid=$!
wait_for "the plain subscription to reach the gateway" 30 subscribed "$b_sock" agent.host42.after
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.after -m "after the denial"
wait "$after_pid" || fail "the plain subscriber failed: $(cat "$TEST_TMP/after.err")"
expect_eq "$(cat "$TEST_TMP/after.out")" "after the denial" "what the plain subscriber received"

summary
