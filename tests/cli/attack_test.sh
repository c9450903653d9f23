#!/usr/bin/env bash
# Attacks on a running gateway and broker, all on 127.0.0.1 (tests/attack/ holds the attack
# client). Each attack must be refused, logged, counted in the gateway's /metrics (or the
# broker's aegis-stat --json), and crash nothing: the gateway still serves a legitimate
# round trip between two brokers after every attack.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

attack=${AEGIS_ATTACK:-}
for tool in "$gateway" "$connect" "$send" "$sub" "$stat" "$keygen" "$attack"; do
    [[ -x $tool ]] || fail "no $tool"
done

# --- keys and the authorized file -----------------------------------------------------------------

make_identities gateway host42 host43 soc mallory
authorize agent host42
authorize agent host43
authorize agent mallory # a valid agent that attacks
authorize backend soc
mallory=(--identity "$TEST_TMP/mallory" --id mallory --gateway-key "$TEST_TMP/gateway.pub")

# --- gateways and brokers ---------------------------------------------------------------------------

max_message_bytes=1048576
handshake_timeout=3

# attack_broker WHO PORT SOCKET: a broker of WHO on the gateway at PORT.
attack_broker() {
    start_broker --url "ws://127.0.0.1:$2/" --socket "$3" --state-dir "$TEST_TMP/$1-$2-state" "$1" --heartbeat 0
}

# metric ADMIN_PORT 'NAME{LABELS}': the value on /metrics, 0 when the series is absent.
metric() {
    "$python" - "$1" "$2" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10) as r:
    for line in r.read().decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name == sys.argv[2]:
            print(value)
            break
    else:
        print(0)
PY
}

# expect_metric_delta ADMIN SERIES BEFORE DELTA: SERIES is now BEFORE + DELTA.
expect_metric_delta() {
    local now
    now=$(metric "$1" "$2")
    ((now == $3 + $4)) || fail "$2: expected $3 + $4, got $now"
    check_passed
}

# The gateway process is alive and answers /healthz.
expect_alive() { # expect_alive PID ADMIN WHAT
    kill -0 "$1" 2>/dev/null || fail "the gateway died after $3"
    check_passed
    "$python" -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$2/healthz', timeout=10).status != 200)" ||
        fail "/healthz did not answer 200 after $3"
    check_passed
}

start_gateway --name main --admin 127.0.0.1:0 --handshake-timeout "$handshake_timeout" --max-message-bytes "$max_message_bytes"
main_pid=$gateway_pid main_port=$gateway_port main_admin=$gateway_admin
glog=$TEST_TMP/main.log
a_sock=$TEST_TMP/host42.sock
b_sock=$TEST_TMP/soc.sock
attack_broker host42 "$main_port" "$a_sock"
attack_broker soc "$main_port" "$b_sock"

# A subscriber on the agent for the whole test; each round trip is one message from the backend.
"$sub" --socket "$a_sock" backend.host42.policies >"$TEST_TMP/roundtrip.out" 2>"$TEST_TMP/roundtrip.err" &
roundtrip_sub=$!
at_exit kill "$roundtrip_sub"
wait_for "the agent's subscription" subscribed "$a_sock" backend.host42.policies
roundtrips=0
expect_roundtrip() { # expect_roundtrip WHAT: a message from soc reaches host42 through the main gateway
    roundtrips=$((roundtrips + 1))
    expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "roundtrip $roundtrips after $1"
    wait_for "round trip $roundtrips ($1)" grep -qx "roundtrip $roundtrips after $1" "$TEST_TMP/roundtrip.out"
    check_passed
}
expect_roundtrip "start"

# --- 1. a recorded handshake replayed --------------------------------------------------------------

echo "1. handshake replay"
replayed=$(metric "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="replayed"}')
bad_signature=$(metric "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="bad_signature"}')
expect_exit 0 "$attack" handshake-replay --port "$main_port" "${mallory[@]}"
echo "$out"
expect_metric_delta "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="replayed"}' "$replayed" 1
expect_metric_delta "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="bad_signature"}' "$bad_signature" 1
expect_match "$(cat "$glog")" "refused peer=127\.0\.0\.1:[0-9]+ reason=replayed: " "the gateway log"
expect_match "$(cat "$glog")" "refused peer=127\.0\.0\.1:[0-9]+ reason=bad_signature: " "the gateway log"
expect_alive "$main_pid" "$main_admin" "handshake replay"
expect_roundtrip "handshake replay"

# --- 2. records replayed, reordered, truncated, bit-flipped ----------------------------------------

echo "2. record tampering"
bad_record=$(metric "$main_admin" 'aegis_gateway_refusals_total{reason="bad_record"}')
opened_before=$(grep -c "record failed to open" "$glog")
expect_exit 0 "$attack" record-tampering --port "$main_port" "${mallory[@]}"
echo "$out"
expect_metric_delta "$main_admin" 'aegis_gateway_refusals_total{reason="bad_record"}' "$bad_record" 4
expect_eq "$(grep -c "closing id=mallory peer=127.0.0.1:[0-9]*: record failed to open" "$glog")" "$((opened_before + 4))" \
    "'record failed to open' lines in the gateway log"
expect_alive "$main_pid" "$main_admin" "record tampering"
expect_roundtrip "record tampering"

# --- 3a. oversized handshake messages, with the gateway's memory bounded -------------------------

echo "3a. oversized handshake messages"
# 64 connections each offer an unfinished 1 MiB handshake message (64 MiB in all): refused from
# the first fragment over 2048 bytes, so the gateway's VmRSS may grow by 16 MiB at most.
too_large=$(metric "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="too_large"}')
transport_large=$(metric "$main_admin" 'aegis_gateway_transport_refusals_total{reason="message_too_large"}')
expect_exit 0 "$attack" oversize-handshake --port "$main_port" --gateway-pid "$main_pid" --connections 64 \
    --bytes "$max_message_bytes" --max-rss-growth-mib 16
echo "$out"
expect_metric_delta "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="too_large"}' "$too_large" 64
expect_metric_delta "$main_admin" 'aegis_gateway_transport_refusals_total{reason="message_too_large"}' "$transport_large" 64
expect_match "$(cat "$glog")" "refused peer=127\.0\.0\.1:[0-9]+ reason=too_large: .*message too large \(over 2048 bytes\)" \
    "the gateway log"
expect_alive "$main_pid" "$main_admin" "oversized handshake messages"

# --- 3b. oversized messages and batches in a session ---------------------------------------------

echo "3b. oversized messages in a session"
# 4 rounds of a batch over --max-message-bytes (refused too_large, the session goes
# on) and a WebSocket message over the transport limit (the session is closed). About 8 MiB offered;
# the gateway reads up to 1 MiB per batch, so its VmRSS may grow by 24 MiB at most.
refused_large=$(metric "$main_admin" 'aegis_gateway_refusals_total{reason="too_large"}')
transport_large=$(metric "$main_admin" 'aegis_gateway_transport_refusals_total{reason="message_too_large"}')
expect_exit 0 "$attack" oversize-session --port "$main_port" "${mallory[@]}" --gateway-pid "$main_pid" --connections 4 \
    --max-message-bytes "$max_message_bytes" --max-rss-growth-mib 24
echo "$out"
expect_metric_delta "$main_admin" 'aegis_gateway_refusals_total{reason="too_large"}' "$refused_large" 8
expect_metric_delta "$main_admin" 'aegis_gateway_transport_refusals_total{reason="message_too_large"}' "$transport_large" 4
expect_match "$(cat "$glog")" "refused request id=mallory request=7 reason=too_large: batch of [0-9]+ bytes is over the limit" \
    "the gateway log"
expect_match "$(cat "$glog")" "closing id=mallory peer=127\.0\.0\.1:[0-9]+: connection to .* message too large" "the gateway log"
expect_alive "$main_pid" "$main_admin" "oversized messages in a session"
expect_roundtrip "oversized messages"

# --- 4. connections that never finish the handshake ------------------------------------------------

echo "4. hanging handshakes"
# 200 of them: 100 bare TCP, 50 upgraded and silent, 50 with a ClientHello and no ClientAuth. A new
# broker connects while they hang; each is closed after --handshake-timeout.
upgrade_timeouts=$(metric "$main_admin" 'aegis_gateway_transport_refusals_total{reason="upgrade_timeout"}')
timeouts=$(metric "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="timeout"}')
"$attack" hanging-handshakes --port "$main_port" --gateway-key "$TEST_TMP/gateway.pub" --tcp-connections 100 \
    --connections 100 --hello-connections 50 --handshake-timeout "$handshake_timeout" \
    --ready-file "$TEST_TMP/hanging.ready" >"$TEST_TMP/hanging.out" 2>&1 &
hanging=$!
wait_for "the hanging connections" test -e "$TEST_TMP/hanging.ready"
c_sock=$TEST_TMP/host43.sock
attack_broker host43 "$main_port" "$c_sock"
kill -0 "$hanging" 2>/dev/null || fail "the hanging connections ended before the new broker connected: $(cat "$TEST_TMP/hanging.out")"
check_passed
expect_exit 0 "$send" --socket "$c_sock" --wait-ack agent.host43.status -m "connected among 200 hanging handshakes"
wait "$hanging" || fail "hanging-handshakes: $(cat "$TEST_TMP/hanging.out")"
check_passed
cat "$TEST_TMP/hanging.out"
expect_metric_delta "$main_admin" 'aegis_gateway_transport_refusals_total{reason="upgrade_timeout"}' "$upgrade_timeouts" 100
expect_metric_delta "$main_admin" 'aegis_gateway_handshakes_total{result="failed",reason="timeout"}' "$timeouts" 100
expect_match "$(cat "$glog")" "refused peer=127\.0\.0\.1:[0-9]+ reason=upgrade_timeout: no WebSocket upgrade within 3000 ms" \
    "the gateway log"
expect_match "$(cat "$glog")" "refused peer=127\.0\.0\.1:[0-9]+ reason=timeout: handshake not finished within 3000 ms" \
    "the gateway log"
expect_alive "$main_pid" "$main_admin" "hanging handshakes"
expect_roundtrip "hanging handshakes"

# --- 6. a valid agent reaching for other identities' channels -----------------------------------------

echo "6. channel access"
denied_publish=$(metric "$main_admin" 'aegis_gateway_access_denied_total{action="publish"}')
denied_subscribe=$(metric "$main_admin" 'aegis_gateway_access_denied_total{action="subscribe"}')
refused_denied=$(metric "$main_admin" 'aegis_gateway_refusals_total{reason="access_denied"}')
expect_exit 0 "$attack" channel-access --port "$main_port" "${mallory[@]}" --other-identity "$TEST_TMP/host42" \
    --other-id host42
echo "$out"
expect_metric_delta "$main_admin" 'aegis_gateway_access_denied_total{action="publish"}' "$denied_publish" 5
expect_metric_delta "$main_admin" 'aegis_gateway_access_denied_total{action="subscribe"}' "$denied_subscribe" 7
expect_metric_delta "$main_admin" 'aegis_gateway_refusals_total{reason="access_denied"}' "$refused_denied" 12
expect_contains "$(cat "$glog")" "reason=access_denied: may not publish to agent.host42.status" "the gateway log"
expect_contains "$(cat "$glog")" "reason=access_denied: batch is signed by another identity" "the gateway log"
expect_contains "$(cat "$glog")" "reason=access_denied: may not subscribe to backend.host42.>" "the gateway log"
expect_alive "$main_pid" "$main_admin" "channel access attempts"
expect_roundtrip "channel access attempts"

# --- 5. a flood of unauthenticated connections -------------------------------------------------------

echo "5. connection flood"
# A second gateway with --max-sessions 100 holds at most 164 connections (64 for handshakes in
# progress). 1000 connections as fast as possible; its broker's session works during and after.
start_gateway --name flood --admin 127.0.0.1:0 --handshake-timeout 5 --max-sessions 100
flood_pid=$gateway_pid flood_port=$gateway_port flood_admin=$gateway_admin
f_sock=$TEST_TMP/host42-flood.sock
attack_broker host42 "$flood_port" "$f_sock"
"$attack" connection-flood --port "$flood_port" --connections 1000 --max-connections 164 --handshake-timeout 5 \
    --ready-file "$TEST_TMP/flood.ready" >"$TEST_TMP/flood.out" 2>&1 &
flood=$!
during=0
while [[ ! -e $TEST_TMP/flood.ready ]] && kill -0 "$flood" 2>/dev/null; do
    expect_exit 0 "$send" --socket "$f_sock" --wait-ack agent.host42.status -m "during the flood $during"
    during=$((during + 1))
done
expect_exit 0 "$send" --socket "$f_sock" --wait-ack agent.host42.status -m "while the flood's connections are held"
wait "$flood" || fail "connection-flood: $(cat "$TEST_TMP/flood.out")"
check_passed
cat "$TEST_TMP/flood.out"
echo "measured: $during acknowledged publishes while the flood was opening connections"
limit_refusals=$(metric "$flood_admin" 'aegis_gateway_transport_refusals_total{reason="connection_limit"}')
((limit_refusals >= 1000 - 164)) || fail "connection_limit refusals: $limit_refusals, expected at least 836"
check_passed
limit_lines=$(grep -c "reason=connection_limit: [0-9]* connections open (limit 164)" "$TEST_TMP/flood.log")
((limit_lines >= 1 && limit_lines < 100)) || fail "expected a few throttled connection_limit lines, got $limit_lines"
check_passed
echo "measured: $limit_refusals connections refused over the limit, in $limit_lines log lines"
expect_alive "$flood_pid" "$flood_admin" "the connection flood"
# After: the held connections timed out, so a new broker gets in, and the first one still works.
g_sock=$TEST_TMP/soc-flood.sock
attack_broker soc "$flood_port" "$g_sock"
"$sub" --socket "$g_sock" -C 1 -W 20 agent.host42.status >"$TEST_TMP/after-flood.out" &
after_sub=$!
wait_for "the backend's subscription on the flooded gateway" \
    sh -c "'$stat' --socket '$g_sock' --json | grep -qF 'agent.host42.status'"
expect_exit 0 "$send" --socket "$f_sock" --wait-ack agent.host42.status -m "after the flood"
wait "$after_sub" || fail "aegis-sub after the flood failed"
expect_eq "$(cat "$TEST_TMP/after-flood.out")" "after the flood" "what the backend received after the flood"
expect_roundtrip "the connection flood (main gateway)"

# --- 7. a hostile relay alters a signed batch ------------------------------------------------------------

echo "7. hostile gateway"
# It holds the real gateway's key (so the broker accepts it) and delivers a batch with its origin
# signature altered, one with its payload altered, one that is no batch, then the genuine one.
"$attack" hostile-gateway --identity "$TEST_TMP/gateway" --id host42 --other-identity "$TEST_TMP/soc" --other-id soc \
    --port-file "$TEST_TMP/hostile.port" --timeout 60 >"$TEST_TMP/hostile.out" 2>&1 &
hostile=$!
at_exit kill -KILL "$hostile"
wait_for "the hostile gateway" test -s "$TEST_TMP/hostile.port"
hostile_port=$(cat "$TEST_TMP/hostile.port")
h_sock=$TEST_TMP/host42-hostile.sock
attack_broker host42 "$hostile_port" "$h_sock"
"$sub" --socket "$h_sock" -W 30 --json backend.host42.policies >"$TEST_TMP/hostile-sub.out" 2>"$TEST_TMP/hostile-sub.err" &
hostile_sub=$!
at_exit kill "$hostile_sub"
wait "$hostile" || fail "hostile-gateway: $(cat "$TEST_TMP/hostile.out")"
check_passed
cat "$TEST_TMP/hostile.out"
wait_for "the genuine batch at the subscriber" grep -q '"payload":"genuine"' "$TEST_TMP/hostile-sub.out"
kill "$hostile_sub"
wait "$hostile_sub" 2>/dev/null
delivered=$(cat "$TEST_TMP/hostile-sub.out")
expect_lines 1 "$delivered" "what the subscriber received through the hostile gateway"
expect_contains "$delivered" '"verified":true' "the delivered message"
expect_contains "$delivered" '"origin_id":"soc"' "the delivered message"
broker_log=$(cat "$TEST_TMP/host42-$hostile_port-state/broker.log")
for sequence in 1 2 3; do
    expect_contains "$broker_log" "rejected delivery $sequence from the gateway: " "the broker log"
done
expect_contains "$broker_log" "batch signature does not verify for" "the broker log"
expect_not_contains "$broker_log" "rejected delivery 4 " "the broker log"
expect_exit 0 "$stat" --socket "$h_sock" --json
expect_contains "$out" '"rejected": 3' "aegis-stat --json"
expect_exit 0 "$connect" --stop --socket "$h_sock"

# --- 8. an agent publishes badly signed batches as itself ------------------------------------------------

echo "8. forged publishes"
# mallory, straight to the gateway, publishes two batches on its own channel whose signature does
# not verify, then the genuine one with the same message id. The main gateway does not verify
# signatures (the default): it acknowledges all three, and soc's broker drops the two forgeries
# (logged, counted as rejected) and passes the genuine one to its subscriber. A gateway with
# verify-signatures (set in its configuration file) refuses the two with bad_signature.
# forged_round SOCK WHAT ATTACK_OPTIONS...: the attack, with soc's subscriber on SOCK; sets delivered.
forged_round() {
    local sock=$1 what=$2 subscriber
    shift 2
    "$sub" --socket "$sock" -W 30 --json agent.mallory.forged >"$TEST_TMP/forged-$what.out" 2>"$TEST_TMP/forged-$what.err" &
    subscriber=$!
    wait_for "soc's subscription to mallory's channel ($what)" subscribed "$sock" agent.mallory.forged
    expect_exit 0 "$attack" forged-publish "$@" "${mallory[@]}"
    echo "$out"
    wait_for "the genuine batch at soc's subscriber ($what)" grep -q '"payload":"genuine"' "$TEST_TMP/forged-$what.out"
    # A forgery that got through would be here before it: the inbox and the broker keep the order.
    kill "$subscriber"
    wait "$subscriber" 2>/dev/null
    delivered=$(cat "$TEST_TMP/forged-$what.out")
    expect_lines 1 "$delivered" "what soc's subscriber received ($what)"
    expect_contains "$delivered" '"verified":true' "the delivered message ($what)"
    expect_contains "$delivered" '"origin_id":"mallory"' "the delivered message ($what)"
}
rejected_by_soc() { status_field "$b_sock" local.rejected; }
soc_log=$TEST_TMP/soc-$main_port-state/broker.log
rejected_before=$(rejected_by_soc)
rejected_lines=$(grep -c "rejected delivery [0-9]* from the gateway: .*batch signature does not verify" "$soc_log")
bad_signature=$(metric "$main_admin" 'aegis_gateway_refusals_total{reason="bad_signature"}')
forged_round "$b_sock" relayed --port "$main_port"
expect_eq "$(rejected_by_soc)" "$((rejected_before + 2))" "rejected deliveries in soc's aegis-stat --json"
expect_eq "$(grep -c "rejected delivery [0-9]* from the gateway: .*batch signature does not verify" "$soc_log")" \
    "$((rejected_lines + 2))" "'rejected delivery' lines in soc's broker log"
expect_metric_delta "$main_admin" 'aegis_gateway_refusals_total{reason="bad_signature"}' "$bad_signature" 0
expect_alive "$main_pid" "$main_admin" "forged publishes"
expect_roundtrip "forged publishes"

printf 'verify-signatures = true\n' >"$TEST_TMP/verify.conf"
start_gateway --name verify --admin 127.0.0.1:0 --config "$TEST_TMP/verify.conf"
verify_pid=$gateway_pid verify_port=$gateway_port verify_admin=$gateway_admin
v_sock=$TEST_TMP/soc-verify.sock
attack_broker soc "$verify_port" "$v_sock"
forged_round "$v_sock" refused --port "$verify_port" --gateway-verifies
expect_metric_delta "$verify_admin" 'aegis_gateway_refusals_total{reason="bad_signature"}' 0 2
expect_eq "$(grep -c "refused request id=mallory request=[0-9]* reason=bad_signature: batch signature does not verify" \
    "$TEST_TMP/verify.log")" 2 "bad_signature lines in the verifying gateway's log"
expect_eq "$(status_field "$v_sock" local.rejected)" 0 "rejected deliveries behind the verifying gateway"
expect_alive "$verify_pid" "$verify_admin" "forged publishes to a verifying gateway"

# --- the end: every process still up, and nothing crashed -----------------------------------------------

expect_alive "$main_pid" "$main_admin" "all attacks"
expect_roundtrip "all attacks"
for sock in "$TEST_TMP"/*.sock; do
    [[ -S $sock ]] && expect_exit 0 "$connect" --stop --socket "$sock"
done
kill -TERM "$main_pid" "$flood_pid" "$verify_pid"
wait "$main_pid" || fail "the main gateway did not exit 0 on SIGTERM: $(tail -5 "$glog")"
wait "$flood_pid" || fail "the flood gateway did not exit 0 on SIGTERM"
wait "$verify_pid" || fail "the verifying gateway did not exit 0 on SIGTERM"
check_passed

summary
