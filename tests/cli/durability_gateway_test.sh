#!/usr/bin/env bash
# Durable delivery through the gateway, with real processes on 127.0.0.1:
# (a) the gateway is killed with SIGKILL in the middle of a stream from an agent to a backend
#     subscriber and restarted on the same port and state directory: every message the agent's
#     broker queued arrives exactly once;
# (b) an agent whose broker is stopped gets, when it comes back, what the backend sent meanwhile
#     (stored in the gateway under the agent identity's kept subscription set).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${AEGIS_DURABILITY_MESSAGES:-2000}

# The local-socket client of the process tests (tests/cli/local_client.py says how it counts).
client=$(dirname "${BASH_SOURCE[0]}")/local_client.py

# --- keys, the gateway, two brokers ---------------------------------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway --admin 127.0.0.1:0
glog=$gateway_log
start_agent() {
    start_broker host42 --heartbeat 0
    a_sock=$broker_sock
}
start_agent
start_broker soc --heartbeat 0
b_sock=$broker_sock

# --- (a) the gateway killed in the middle of a stream ---------------------------------------------------

"$python" "$client" subscribe "$b_sock" 'agent.host42.>' "$N" "$TEST_TMP/a.received" &
sub_pid=$!
wait_for "the backend subscriber" test -e "$TEST_TMP/a.received.ready"
"$python" "$client" publish "$a_sock" agent.host42.stream "$N" "$TEST_TMP/a.sent" --steady &
pub_pid=$!
published_a_quarter() { (($(status_field "$a_sock" local.published) >= N / 4)); }
wait_for "a quarter of the stream to be queued" published_a_quarter
gone "$pub_pid" && fail "the stream was over before the gateway was killed"
check_passed
restart_gateway
wait "$pub_pid" || fail "the publishing client failed"
wait "$sub_pid" || fail "the subscribing client failed"
grep -qE "authenticated id=soc role=backend .* session=resumed resume_point=[0-9]+$" "$glog" ||
  fail "the gateway log has no resumed session of soc: $(cat "$glog")"
delivery_counts "$TEST_TMP/a.sent" "$TEST_TMP/a.received" "(a) gateway killed mid-stream"
expect_eq "$(grep -c . "$TEST_TMP/a.sent")" "$N" "(a) messages queued"

# --- (b) an agent away while the backend sends ------------------------------------------------------------

# The agent's subscriber is attached when its broker stops: the identity's subscription set at
# the gateway stays what it was, and routes into the agent's inbox while it is away.
"$python" "$client" subscribe "$a_sock" backend.host42.policies 1000000 "$TEST_TMP/b.first" &
first_pid=$!
wait_for "the agent's subscriber" test -e "$TEST_TMP/b.first.ready"
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "while here"
delivered_here() { (($(status_field "$a_sock" local.delivered) >= 1)); }
wait_for "the message at the agent's subscriber" delivered_here
expect_exit 0 "$connect" --stop --socket "$a_sock"
wait "$first_pid" || fail "the agent's first subscriber failed"
expect_eq "$(cat "$TEST_TMP/b.first")" "while here" "(b) the message while connected"
wait_for "the gateway to see the agent go" grep -q "disconnect id=host42" "$glog"
M=20
: >"$TEST_TMP/b.sent"
for ((i = 0; i < M; i++)); do
    expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "away-$i"
    echo "away-$i" >>"$TEST_TMP/b.sent"
done
start_agent
"$python" "$client" subscribe "$a_sock" backend.host42.policies "$M" "$TEST_TMP/b.received" &
sub_pid=$!
wait "$sub_pid" || fail "the agent's subscriber after the restart failed"
delivery_counts "$TEST_TMP/b.sent" "$TEST_TMP/b.received" "(b) agent broker stopped while the backend sent"

summary
