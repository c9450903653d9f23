#!/usr/bin/env bash
# Brokers that trust the gateway by an operator CA (aegis-connect --backend-ca) instead of a
# pinned key: three brokers connect to a gateway presenting a gateway certificate; the gateway's
# key is rotated (a new key, a new certificate, a restart on the same port) and every broker
# reconnects without a refusal, messages flowing again. A gateway without a certificate, with a
# certificate of another role, or with an expired one is refused at the first handshake (exit 4)
# with the reason; a bad --backend-ca file or option combination fails at once.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stat_has() { "$stat" --socket "$1" --json 2>/dev/null | grep -Eq "$2"; }

for who in ca gw-old gw-new gw-bare gw-agent gw-expired host1 host2 soc; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
for gw in gw-old gw-new; do
    expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I gw -r gateway "$TEST_TMP/$gw.pub"
done
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I gw -r agent "$TEST_TMP/gw-agent.pub"
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I gw -r gateway -V -2w:-1w "$TEST_TMP/gw-expired.pub"
cas=$TEST_TMP/gateway-cas
{
    echo "# operator CAs trusted for gateway certificates"
    cat "$TEST_TMP/ca.pub"
} >"$cas"

auth=$TEST_TMP/authorized
{
    echo "role=agent,id=host1 $(cat "$TEST_TMP/host1.pub")"
    echo "role=agent,id=host2 $(cat "$TEST_TMP/host2.pub")"
    echo "role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
} >"$auth"

glog=$TEST_TMP/gateway.log
start_gateway() { # start_gateway KEY LISTEN
    "$gateway" --listen "$2" --identity "$TEST_TMP/$1" --authorized "$auth" --state-dir "$TEST_TMP/gw-state" \
        2>>"$glog" &
    gateway_pid=$!
    at_exit kill -KILL "$gateway_pid"
}
start_gateway gw-old 127.0.0.1:0
wait_for "the gateway to listen" 20 grep -q "listening on 127.0.0.1:" "$glog"
expect_contains "$(cat "$glog")" "presenting gateway certificate serial" "the gateway log"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$glog" | head -1)
url="ws://127.0.0.1:$port/"
timing=(--backoff-min 0.2 --backoff-max 1 --timeout 20 --heartbeat 0)

for who in host1 host2 soc; do
    expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/$who" --backend-ca "$cas" --socket "$TEST_TMP/$who.sock" \
        --state-dir "$TEST_TMP/$who-state" "${timing[@]}"
    at_exit "$connect" --stop --socket "$TEST_TMP/$who.sock"
done
for who in host1 host2 soc; do
    wait_for "$who to connect" 20 stat_has "$TEST_TMP/$who.sock" '"state": *"connected"'
done

# Rotate: the gateway comes back on the same port with a new key and a new certificate.
kill -TERM "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
: >"$glog"
start_gateway gw-new "127.0.0.1:$port"
wait_for "the new gateway to listen" 20 grep -q "listening on 127.0.0.1:$port" "$glog"
for who in host1 host2 soc; do
    wait_for "$who to reconnect to the rotated gateway" 30 stat_has "$TEST_TMP/$who.sock" '"state": *"connected"'
    ! stat_has "$TEST_TMP/$who.sock" '"state": *"refused"' || fail "$who was refused after the rotation"
    if grep -q "server_key_mismatch\|not one this broker trusts" "$TEST_TMP/$who-state/broker.log" 2>/dev/null; then
        fail "$who logged a key mismatch: $(grep -m1 mismatch "$TEST_TMP/$who-state/broker.log")"
    fi
    check_passed
done
new_fingerprint=$("$keygen" -l -f "$TEST_TMP/gw-new.pub" | cut -d' ' -f1)
expect_contains "$(cat "$glog")" "as $new_fingerprint" "the rotated gateway's log"

# Messages flow through the rotated gateway: host1 and host2 to the backend.
"$sub" --socket "$TEST_TMP/soc.sock" -C 2 -W 20s 'agent.*.hello' >"$TEST_TMP/received" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
at_exit kill "$sub_pid"
wait_for "the backend's subscription" 20 stat_has "$TEST_TMP/soc.sock" '"agent\.\*\.hello"'
expect_exit 0 "$send" --socket "$TEST_TMP/host1.sock" --wait-ack agent.host1.hello -m "from host1"
expect_exit 0 "$send" --socket "$TEST_TMP/host2.sock" --wait-ack agent.host2.hello -m "from host2"
wait "$sub_pid" || fail "aegis-sub did not receive both messages: $(cat "$TEST_TMP/sub.err")"
expect_contains "$(cat "$TEST_TMP/received")" "from host1" "what the backend received"
expect_contains "$(cat "$TEST_TMP/received")" "from host2" "what the backend received"

# Gateways a CA-trusting broker refuses, each at its first handshake (exit 4) with the reason.
refused_by() { # refused_by GATEWAY_KEY NEEDLE
    kill -TERM "$gateway_pid"
    wait "$gateway_pid" 2>/dev/null
    : >"$glog"
    start_gateway "$1" "127.0.0.1:$port"
    wait_for "gateway $1 to listen" 20 grep -q "listening on 127.0.0.1:$port" "$glog"
    expect_error 4 "$connect" "$url" --identity "$TEST_TMP/host1" --backend-ca "$cas" --socket "$TEST_TMP/try.sock" \
        --state-dir "$TEST_TMP/try-state" "${timing[@]}"
    expect_contains "$err" "$2" "refusing gateway $1"
    [[ ! -e $TEST_TMP/try.sock ]] || fail "a broker refusing gateway $1 left its socket"
}
refused_by gw-bare "sent no certificate"
refused_by gw-agent "certifies an agent, not a gateway"
refused_by gw-expired "gateway certificate serial"
expect_contains "$err" "is expired: valid from"

# A bad --backend-ca fails at start.
expect_error 2 "$connect" "$url" --identity "$TEST_TMP/host1" --backend-ca "$cas" --accept-new \
    --socket "$TEST_TMP/try.sock" --state-dir "$TEST_TMP/try-state"
expect_contains "$err" "cannot be combined"
printf '# nothing\n' >"$TEST_TMP/empty-cas"
expect_error 6 "$connect" "$url" --identity "$TEST_TMP/host1" --backend-ca "$TEST_TMP/empty-cas" \
    --socket "$TEST_TMP/try.sock" --state-dir "$TEST_TMP/try-state"
expect_contains "$err" "no CA key"
printf '%s\nnot a key\n' "$(cat "$TEST_TMP/ca.pub")" >"$TEST_TMP/bad-cas"
expect_error 6 "$connect" "$url" --identity "$TEST_TMP/host1" --backend-ca "$TEST_TMP/bad-cas" \
    --socket "$TEST_TMP/try.sock" --state-dir "$TEST_TMP/try-state"
expect_contains "$err" "bad-cas:2:"

summary
