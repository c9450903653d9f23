#!/usr/bin/env bash
# Batch format 2 (PROTOCOL.md §5): an agent broker told by its configuration file to sign
# format 2 (batch-format = 2) publishes through a gateway that verifies signatures; the gateway
# keeps the batch as it was signed (first byte 2) for a backend broker that is away, and the
# backend broker, which signs format 1, verifies and delivers it once back; the backend's format 1
# batches reach the agent. The option's range is checked by options_test.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway --verify-signatures
glog=$gateway_log

printf 'batch-format = 2\n' >"$TEST_TMP/host42.conf"
start_broker host42 --config "$TEST_TMP/host42.conf" --heartbeat 0
a_sock=$broker_sock
start_broker soc --heartbeat 0
b_sock=$broker_sock
expect_eq "$(status_field "$a_sock" batch_format)" 2 "the agent broker's batch format (status)"
expect_eq "$(status_field "$b_sock" batch_format)" 1 "the backend broker's batch format (status)"
expect_exit 0 "$stat" --socket "$a_sock"
expect_contains "$out" ", signs batch format 2" "aegis-stat on the agent broker"
expect_exit 0 "$stat" --json --socket "$b_sock"
expect_eq "$("$python" -c 'import json, sys; print(json.load(sys.stdin)["batch_format"])' <<<"$out")" 1 \
    "aegis-stat --json on the backend broker"

# --- the agent's format 2 batch, delivered while the backend is connected -------------------------
"$sub" --socket "$b_sock" -W 60 agent.host42.anomalies >"$TEST_TMP/first.out" 2>"$TEST_TMP/first.err" &
first_pid=$!
wait_for "the backend's subscription" subscribed "$b_sock" agent.host42.anomalies
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.anomalies -m one
wait_for "the first message at the backend" grep -qx one "$TEST_TMP/first.out"
check_passed

# --- stored for the backend while it is away: the gateway keeps the batch as signed ---------------
# The subscriber stays attached while its broker stops, so the identity's subscription at the
# gateway stays and routes into its inbox.
expect_exit 0 "$connect" --stop --socket "$b_sock"
wait "$first_pid" 2>/dev/null
wait_for "the gateway to see the backend go" grep -q "disconnect id=soc" "$glog"
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.anomalies -m two
stored=$("$python" - "$TEST_TMP/gateway-state/gateway.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(" ".join(f"{channel}:{batch[0]}" for channel, batch in db.execute("SELECT channel, batch FROM inbox")))
PY
)
expect_eq "$stored" "agent.host42.anomalies:2" "the batch the gateway keeps for the backend (channel:first byte)"

start_broker soc --heartbeat 0
expect_exit 0 "$sub" --socket "$b_sock" -C 1 -W 20 agent.host42.anomalies
expect_eq "$out" two "the stored format 2 batch, delivered once the backend is back"
expect_eq "$(status_field "$b_sock" local.rejected)" 0 "batches the backend refused"

# --- the backend's format 1 batches reach the agent ---------------------------------------------------
"$sub" --socket "$a_sock" -C 1 -W 20 backend.host42.policies >"$TEST_TMP/agent.out" 2>"$TEST_TMP/agent.err" &
agent_pid=$!
wait_for "the agent's subscription" subscribed "$a_sock" backend.host42.policies
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "policy v1"
wait "$agent_pid" || fail "aegis-sub on the agent: $(cat "$TEST_TMP/agent.err")"
expect_eq "$(cat "$TEST_TMP/agent.out")" "policy v1" "what the agent received"

# The gateway verified every batch (--verify-signatures) and refused none.
expect_not_contains "$(cat "$glog")" "bad_signature" "the gateway's log"

summary
