#!/usr/bin/env bash
# The running system end to end, all on 127.0.0.1: a gateway, an agent broker (host42) and a
# backend broker (soc). Messages both ways with the origin's verified identity; refusals
# (unknown key, wrong pinned key, channel rules); trust on first use; reconnect after the
# gateway is killed and restarted on the same port; revocation by SIGHUP.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The broker's status object (PROTOCOL-local.md §8.3.4), for the checks the tools do not print yet.
status_of() {
    "$python" - "$1" <<'PY'
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
def send(header):
    text = json.dumps(header).encode()
    s.sendall(struct.pack(">II", 4 + len(text), len(text)) + text)
def read():
    data = b""
    while len(data) < 8:
        data += s.recv(8 - len(data))
    total, length = struct.unpack(">II", data)
    body = b""
    while len(body) < total - 4:
        body += s.recv(total - 4 - len(body))
    return json.loads(body[:length])
send({"op": "hello", "v": 1, "id": 1})
read()
send({"op": "status", "id": 2})
print(json.dumps(read()["status"], sort_keys=True))
PY
}

status_has() { status_of "$1" | grep -qF -- "$2"; }

# --- keys and the authorized file ---------------------------------------------------------------

make_identities gateway host42 soc audit stranger impostor
gateway_fp=$(fingerprint "$TEST_TMP/gateway.pub")
host42_fp=$(fingerprint "$TEST_TMP/host42.pub")
soc_fp=$(fingerprint "$TEST_TMP/soc.pub")
authorize agent host42
authorize backend soc
# Narrowed by the gateway only: the broker's own check knows the role's defaults, not this.
authorize backend audit pub=backend.host42.tests,sub=agent.*.anomalies
auth=$TEST_TMP/authorized

# --- the gateway ------------------------------------------------------------------------------------

start_gateway
glog=$gateway_log
url=$gateway_url
check_passed

# --- the agent broker (pinned gateway key) and the backend broker (trust on first use) -------------

timing=(--backoff-min 0.2 --backoff-max 1 --timeout 20)
start_broker host42 --heartbeat 0.5
a_sock=$broker_sock
agent_state=$broker_state_dir
expect_contains "$out" "connected to $url as host42 (agent); backend $gateway_fp"
expect_contains "$(cat "$glog")" "authenticated id=host42 role=agent fingerprint=$host42_fp" "the gateway log"

start_broker soc --accept-new
b_sock=$broker_sock
backend_state=$broker_state_dir
expect_contains "$out" "connected to $url as soc (backend); backend $gateway_fp"
known=$(cat "$backend_state/known_backends")
expect_contains "$known" "$url $(cut -d' ' -f1,2 "$TEST_TMP/gateway.pub")" "known_backends"
expect_contains "$(cat "$backend_state/broker.log")" "accepted new gateway key $gateway_fp" "the backend broker log"

# --- backend -> agent ----------------------------------------------------------------------------------

"$sub" --socket "$a_sock" -C 2 -W 20 -v backend.host42.policies >"$TEST_TMP/agent-sub.out" 2>"$TEST_TMP/agent-sub.err" &
sub_pid=$!
wait_for "the agent's subscription" status_has "$a_sock" '"subscriptions": ["backend.host42.policies"]'
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "policy v1"
printf 'policy\nv2 with a newline' | "$send" --socket "$b_sock" --wait-ack backend.host42.policies ||
    fail "aegis-send from stdin failed"
check_passed
wait "$sub_pid" || fail "aegis-sub on the agent: exit $?: $(cat "$TEST_TMP/agent-sub.err")"
check_passed
expect_eq "$(cat "$TEST_TMP/agent-sub.out")" $'backend.host42.policies policy v1\nbackend.host42.policies policy\nv2 with a newline' \
    "what the agent received"

# The origin's verified identity, as the agent's subscriber sees it.
"$sub" --socket "$a_sock" -C 1 -W 20 --json 'backend.host42.*' >"$TEST_TMP/agent-json.out" &
sub_pid=$!
wait_for "the agent's second subscription" status_has "$a_sock" '"backend.host42.*"'
expect_exit 0 "$send" --socket "$b_sock" --wait-ack -p high backend.host42.investigations -m "look at pid 4711"
wait "$sub_pid" || fail "aegis-sub --json on the agent failed"
line=$(cat "$TEST_TMP/agent-json.out")
expect_contains "$line" '"origin_id":"soc"' "the agent's message"
expect_contains "$line" "\"origin_fingerprint\":\"$soc_fp\"" "the agent's message"
expect_contains "$line" '"verified":true' "the agent's message"
expect_contains "$line" '"priority":"high"' "the agent's message"
expect_contains "$line" '"payload":"look at pid 4711"' "the agent's message"

# --- agent -> backend ----------------------------------------------------------------------------------

"$sub" --socket "$b_sock" -C 1 -W 20 --json 'agent.*.anomalies' >"$TEST_TMP/backend-json.out" &
sub_pid=$!
wait_for "the backend's subscription" status_has "$b_sock" '"agent.*.anomalies"'
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.anomalies -m '{"process":"xmrig"}'
wait "$sub_pid" || fail "aegis-sub on the backend failed"
line=$(cat "$TEST_TMP/backend-json.out")
expect_contains "$line" '"channel":"agent.host42.anomalies"' "the backend's message"
expect_contains "$line" '"origin_id":"host42"' "the backend's message"
expect_contains "$line" "\"origin_fingerprint\":\"$host42_fp\"" "the backend's message"
expect_contains "$line" '"verified":true' "the backend's message"
expect_contains "$line" '"payload":"{\"process\":\"xmrig\"}"' "the backend's message"

# Binary payloads arrive unchanged.
head -c 4096 /dev/urandom >"$TEST_TMP/blob"
"$sub" --socket "$b_sock" -C 1 -W 20 agent.host42.logs >"$TEST_TMP/blob.out" &
sub_pid=$!
wait_for "the backend's logs subscription" status_has "$b_sock" '"agent.host42.logs"'
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.logs -f "$TEST_TMP/blob"
wait "$sub_pid" || fail "aegis-sub for the binary payload failed"
head -c 4096 "$TEST_TMP/blob.out" | cmp -s - "$TEST_TMP/blob" || fail "the binary payload changed on the way"
check_passed

# The agent's heartbeat reaches the backend, with its status.
expect_exit 0 "$sub" --socket "$b_sock" -C 1 -W 20 --json agent.host42.heartbeat
expect_contains "$out" '"kind":"heartbeat"' "the heartbeat"
expect_contains "$out" "queue_depth" "the heartbeat"
expect_contains "$out" "\"origin_fingerprint\":\"$host42_fp\"" "the heartbeat"

# --- channel rules -----------------------------------------------------------------------------------------

expect_error 4 "$send" --socket "$a_sock" agent.other.anomalies -m nope
expect_contains "$err" "access denied"
expect_error 4 "$send" --socket "$a_sock" backend.host42.policies -m nope
expect_error 4 "$sub" --socket "$a_sock" -W 5 'agent.>'
expect_contains "$err" "access denied"
expect_error 4 "$sub" --socket "$a_sock" -W 5 backend.other.policies
expect_error 4 "$send" --socket "$b_sock" agent.host42.anomalies -m nope
expect_error 4 "$sub" --socket "$b_sock" -W 5 'backend.>'

# Refusals only the gateway knows about (a narrowed authorized line) come back with its reason,
# and a refused pattern does not spoil the subscriptions that follow.
audit_sock=$TEST_TMP/audit.sock
expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/audit" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$audit_sock" --state-dir "$TEST_TMP/audit-state" "${timing[@]}"
at_exit "$connect" --stop --socket "$audit_sock"
expect_error 4 "$sub" --socket "$audit_sock" -W 10 agent.host42.logs
expect_contains "$err" "access denied"
"$sub" --socket "$audit_sock" -C 1 -W 20 agent.host42.anomalies >"$TEST_TMP/audit-sub.out" &
sub_pid=$!
wait_for "the audit subscription" status_has "$audit_sock" '"subscriptions": ["agent.host42.anomalies"]'
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.anomalies -m "for the auditor"
wait "$sub_pid" || fail "aegis-sub after a refused pattern failed"
expect_eq "$(cat "$TEST_TMP/audit-sub.out")" "for the auditor" "what the auditor received"
expect_error 4 "$send" --socket "$audit_sock" --wait-ack backend.host42.policies -m "not mine to send"
expect_contains "$err" "access denied"
expect_exit 0 "$send" --socket "$audit_sock" backend.host42.policies -m "queued, then refused"
wait_for "the refusal in the audit broker's log" grep -q "gateway refused 1 message(s) to backend.host42.policies" \
    "$TEST_TMP/audit-state/broker.log"
expect_exit 0 "$send" --socket "$audit_sock" --wait-ack backend.host42.tests -m "allowed"
expect_exit 0 "$connect" --stop --socket "$audit_sock"

# --- refusals at connect time ----------------------------------------------------------------------------

authenticated_before=$(grep -c "authenticated id=" "$glog")
expect_error 4 "$connect" "$url" --identity "$TEST_TMP/stranger" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/stranger.sock" --state-dir "$TEST_TMP/stranger-state" "${timing[@]}"
expect_contains "$err" "unknown identity"
[[ ! -e $TEST_TMP/stranger.sock ]] || fail "a refused broker left its socket behind"
check_passed

expect_error 4 "$connect" "$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/impostor.pub" \
    --socket "$TEST_TMP/pinned.sock" --state-dir "$TEST_TMP/pinned-state" "${timing[@]}"
expect_contains "$err" "pinned"
[[ $(grep -c "authenticated id=" "$glog") == "$authenticated_before" ]] ||
    fail "the gateway authenticated a client that refused its key: $(cat "$glog")"
check_passed

# A known_backends entry is a pin: the backend broker refuses another gateway key at that URL.
echo "ws://127.0.0.1:1/ $(cat "$TEST_TMP/impostor.pub")" >>"$backend_state/known_backends"
expect_exit 0 "$connect" --stop --socket "$b_sock"
expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/soc" --accept-new --socket "$b_sock" \
    --state-dir "$backend_state" "${timing[@]}"
expect_eq "$(grep -c "^$url " "$backend_state/known_backends")" 1 "known_backends lines for $url"

# A known_backends key that differs from the gateway's is refused like a wrong --backend-key.
mkdir -m 700 "$TEST_TMP/tofu-state"
echo "$url $(cat "$TEST_TMP/impostor.pub")" >"$TEST_TMP/tofu-state/known_backends"
chmod 600 "$TEST_TMP/tofu-state/known_backends" # private, or it is refused for that
expect_error 4 "$connect" "$url" --identity "$TEST_TMP/soc" --accept-new --socket "$TEST_TMP/tofu.sock" \
    --state-dir "$TEST_TMP/tofu-state" "${timing[@]}"
expect_contains "$err" "pinned"
# ... and the error says where that key is recorded and how to trust a new one.
expect_contains "$err" "recorded for $url in $TEST_TMP/tofu-state/known_backends"
expect_contains "$err" "remove that line (or the file) and start aegis-connect --accept-new again"

# --- the gateway killed and restarted on the same port: the brokers come back by themselves ---------------

kill_gateway
wait_for "the agent broker to notice" status_has "$a_sock" '"state": "backing_off"'
restart_gateway
check_passed

wait_for "the agent broker to reconnect" status_has "$a_sock" '"state": "connected"'
wait_for "the backend broker to reconnect" status_has "$b_sock" '"state": "connected"'
expect_match "$(status_of "$a_sock")" '"reconnects": [1-9]' "the agent's status"
"$sub" --socket "$a_sock" -C 1 -W 20 backend.host42.policies >"$TEST_TMP/after-restart.out" &
sub_pid=$!
wait_for "the agent's subscription after the restart" status_has "$a_sock" '"backend.host42.policies"'
expect_exit 0 "$send" --socket "$b_sock" --wait-ack --timeout 20 backend.host42.policies -m "after the restart"
wait "$sub_pid" || fail "aegis-sub after the restart failed"
expect_eq "$(cat "$TEST_TMP/after-restart.out")" "after the restart" "the message after the restart"

# --- revocation: SIGHUP after removing the agent's key -----------------------------------------------------

grep -v "id=host42" "$auth" >"$auth.new" && mv "$auth.new" "$auth"
unknown_before=$(grep -c "reason=unknown_identity" "$glog")
kill -HUP "$gateway_pid"
wait_for "the gateway to revoke host42" grep -q "revoked id=host42" "$glog"
wait_for "the agent broker to say refused" status_has "$a_sock" '"state": "refused"'
agent_status=$(status_of "$a_sock")
# revoked, or unknown_identity once it has asked again
expect_match "$agent_status" '"reason": "(revoked|unknown_identity)"' "the agent's status"
expect_error 4 "$send" --socket "$a_sock" --wait-ack --timeout 10 agent.host42.anomalies -m "after revocation"
expect_match "$err" "(revoked|unknown_identity)"
expect_contains "$(cat "$agent_state/broker.log")" "revoked" "the agent broker log"
# It asks again (refused_identity_test.sh follows it until the key comes back), never admitted.
asked_again() { (($(grep -c "reason=unknown_identity" "$glog") > unknown_before)); }
wait_for "the refused broker to ask again" asked_again
status_has "$a_sock" '"state": "refused"' || fail "the revoked broker left the refused state"
check_passed

# The backend is unaffected.
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "still here"

summary
