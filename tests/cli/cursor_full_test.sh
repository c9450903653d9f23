#!/usr/bin/env bash
# A durable subscription's inbox is bounded (aegis-connect --cursor-max-messages): while its
# client is away, deliveries past the bound drop the oldest messages. The drops are counted
# (aegis-queue cursors), the newest messages are the ones kept, and the broker's log gets one
# "inbox full" line per subscription and minute with the count, not one line per delivery.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

limit=5
make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
start_broker host42
a_sock=$broker_sock
start_broker soc --cursor-max-messages "$limit"
b_sock=$broker_sock
b_log=$broker_state_dir/broker.log

# The durable subscription exists (and the gateway routes to it) before anything is published.
expect_exit 0 "$sub" --socket "$b_sock" --durable night --drain -W 20 agent.host42.night
wait_for "the subscription to reach the gateway" 20 subscribed "$b_sock" agent.host42.night

cursor_field() { # cursor_field FIELD: the cursor "night"'s FIELD as aegis-queue lists it
    "$queue" cursors --json --socket "$b_sock" | "$python" -c 'import json, sys
print(next(c[sys.argv[1]] for c in json.load(sys.stdin) if c["name"] == "night"))' "$1"
}

# Thirty messages, in three publishes (so three deliveries, each over the bound).
total=30
for round in 0 1 2; do
    seq -f "m-%.0f" $((round * 10)) $((round * 10 + 9)) >"$TEST_TMP/round-$round"
    expect_exit 0 "$send" --socket "$a_sock" --wait-ack -l agent.host42.night <"$TEST_TMP/round-$round"
done
wait_for "every message to reach the inbox" 20 eval '(( $(cursor_field pending) + $(cursor_field dropped) == total ))'
expect_eq "$(cursor_field pending)" "$limit" "messages kept in the inbox"
expect_eq "$(cursor_field dropped)" "$((total - limit))" "messages dropped from the inbox"

# One line for the first drop; the later drops of the same minute are held for the next line.
expect_eq "$(grep -c 'durable subscription night: inbox full' "$b_log")" 1 "inbox full lines in the log"
expect_match "$(grep 'durable subscription night: inbox full' "$b_log")" \
    'durable subscription night: inbox full, [0-9]+ oldest message\(s\) dropped' "the inbox full line"

# What is kept is the newest.
expect_exit 0 "$sub" --socket "$b_sock" --durable night --drain -W 20 agent.host42.night
expect_eq "$out" "$(seq -f 'm-%.0f' $((total - limit)) $((total - 1)))" "the messages kept"
expect_eq "$(cursor_field dropped)" "$((total - limit))" "the drop count after a drain"

summary
