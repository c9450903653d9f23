#!/usr/bin/env bash
# The answers on one local connection keep the order of its requests (PROTOCOL.md §8.3), with real
# processes on 127.0.0.1: a client writes its hello and then publishes and status requests,
# alternating, in one write without waiting for any answer (§8.3.1); every request is answered
# ok, in the order it was written, although each publish's answer waits for its group's log sync
# (taken while the gateway stores the batch) and a status is answered at once. The messages all
# arrive. aegis-send -m, which writes its publish behind its hello, sends and is acknowledged.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=200
client=$(dirname "${BASH_SOURCE[0]}")/local_client.py

start_agent_and_backend --heartbeat 0
channel=agent.host42.order

# --- hello, publishes and status requests in one write are answered in request order ---
"$sub" --socket "$b_sock" -C "$N" -W 60 "$channel" >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
wait_for "the subscription" subscribed "$b_sock" "$channel"
expect_exit 0 "$python" "$client" pipelined "$a_sock" "$channel" "$N" "$TEST_TMP/answers"
seq 0 $((2 * N)) | sed 's/$/ ok/' >"$TEST_TMP/expected"
expect_eq "$(diff "$TEST_TMP/expected" "$TEST_TMP/answers" | head -n 6)" "" "answers in request order, all ok (diff)"
wait "$sub_pid"
expect_eq "$(sort -u "$TEST_TMP/sub.out" | wc -l)" "$N" "every publish delivered once"

# --- aegis-send -m --wait-ack: the publish written behind the hello is queued and acknowledged ---
expect_exit 0 "$send" --socket "$a_sock" --wait-ack --timeout 30s "$channel" -m one-shot

summary
