#!/usr/bin/env bash
# Rolling keys over without a CA. The gateway's key: brokers that pin the old and the new key
# (--backend-key twice, or two known_backends lines for the URL) reconnect without a refusal
# when the gateway restarts with the new one; a broker pinning neither is refused at once with
# both fingerprints. An agent's key: two authorized lines give one id two keys (a warning names
# the rollover), both connect, and removing the old line closes only the old key's session.
# Lines of one id that grant different roles make the file bad.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gw-old gw-new gw-other host42 host42-new
cp "$TEST_TMP/gw-old" "$TEST_TMP/gateway"
cp "$TEST_TMP/gw-old.pub" "$TEST_TMP/gateway.pub"
authorize agent host42
start_gateway

# --- the gateway's key -----------------------------------------------------------------------------

start_broker host42 --backend-key "$TEST_TMP/gw-old.pub" --backend-key "$(cat "$TEST_TMP/gw-new.pub")"
pinned_sock=$broker_sock
# A second broker of the same id would replace the first; this one trusts by known_backends.
echo "role=agent,id=host42 $(cat "$TEST_TMP/host42-new.pub")" >>"$TEST_TMP/authorized"
kill -HUP "$gateway_pid"
wait_for "the gateway to reload" 20 grep -q "is also held by the key on line 1" "$gateway_log"
expect_contains "$(grep 'also held' "$gateway_log")" "a key rollover" "the rollover warning"
known_state=$TEST_TMP/known-state
mkdir -m 700 "$known_state"
{
    echo "# the old and the new key of the gateway"
    echo "$gateway_url $(cat "$TEST_TMP/gw-old.pub")"
    echo "$gateway_url $(cat "$TEST_TMP/gw-new.pub")"
    echo "ws://127.0.0.1:1/ $(cat "$TEST_TMP/gw-other.pub")"
} >"$known_state/known_backends"
chmod 600 "$known_state/known_backends"
start_broker --state-dir "$known_state" --socket "$TEST_TMP/known.sock" host42-new --accept-new
known_sock=$broker_sock
wait_for "both keys of host42 to be connected" 20 eval 'connected "$pinned_sock" && connected "$known_sock"'

# The gateway restarts with its new key on the same port: both brokers come back, no refusal.
cp "$TEST_TMP/gw-new" "$TEST_TMP/gateway"
cp "$TEST_TMP/gw-new.pub" "$TEST_TMP/gateway.pub"
restart_gateway
wait_for "the pinning broker to reconnect" 30 connected "$pinned_sock"
wait_for "the known_backends broker to reconnect" 30 connected "$known_sock"
expect_not_contains "$(cat "$TEST_TMP/host42.log" "$TEST_TMP/host42-state/broker.log" "$known_state/broker.log" 2>/dev/null)" \
    "server_key_mismatch" "the brokers' logs after the gateway's key changed"
expect_eq "$(grep -c "$gateway_url" "$known_state/known_backends")" 2 "known_backends lines (nothing recorded again)"

# Messages flow with the new key.
expect_exit 0 "$send" --socket "$pinned_sock" --wait-ack agent.host42.after -m rolled

# A broker pinning two keys that are not the gateway's: refused at once, both fingerprints named.
expect_error 4 "$connect" "$gateway_url" --identity "$TEST_TMP/host42" --socket "$TEST_TMP/wrong.sock" \
    --state-dir "$TEST_TMP/wrong-state" --backend-key "$TEST_TMP/gw-old.pub" --backend-key "$TEST_TMP/gw-other.pub" \
    --timeout 20
expect_contains "$err" "pinned keys are $(fingerprint "$TEST_TMP/gw-old.pub"), $(fingerprint "$TEST_TMP/gw-other.pub")" \
    "the refusal"
expect_contains "$err" "server presented $(fingerprint "$TEST_TMP/gw-new.pub")" "the refusal"

# --- the agent's key -----------------------------------------------------------------------------

# The old line goes: its session is closed, the new key's stays.
grep -v "$(cut -d' ' -f2 "$TEST_TMP/host42.pub")" "$TEST_TMP/authorized" >"$TEST_TMP/authorized.new"
mv "$TEST_TMP/authorized.new" "$TEST_TMP/authorized"
kill -HUP "$gateway_pid"
wait_for "the gateway to close the old key's session" 20 grep -q "revoked id=host42 fingerprint=$(fingerprint "$TEST_TMP/host42.pub")" "$gateway_log"
wait_for "the old key's broker to say refused" 20 in_state "$pinned_sock" refused
connected "$known_sock" || fail "the new key's session was closed by the reload"
check_passed

# Lines of one id with different grants: the file is bad, nothing is applied.
echo "role=backend,id=host42 $(cat "$TEST_TMP/host42.pub")" >>"$TEST_TMP/authorized"
expect_error 6 "$gateway" --check-config --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" \
    --authorized "$TEST_TMP/authorized" --state-dir "$TEST_TMP/check-state"
expect_contains "$err" "id 'host42' already belongs to another key (line 1) with another role" "--check-config"

summary
