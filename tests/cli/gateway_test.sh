#!/usr/bin/env bash
# aegis-gateway as a process: options, exit codes, the authorized file, /healthz and /metrics,
# signals, and garbage on the WebSocket port.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$gateway" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done

# --- options and exit codes (need no keys) -------------------------------------------------

expect_exit 0 "$gateway" --version
expect_contains "$out" "aegis-gateway (Aegis)"
expect_exit 0 "$gateway" -h
for option in --listen --identity --authorized --state-dir --admin --tls-cert --tls-key --max-sessions \
    --max-message-bytes --handshake-timeout --clock-skew --inbox-max-messages --inbox-max-age --replay-window \
    --replay-rate --help --version; do
    expect_contains "$out" "$option" "--help"
done
expect_error 2 "$gateway" --no-such-option
expect_error 2 "$gateway" --authorized x --state-dir y # --identity missing
expect_error 2 "$gateway" --identity x --authorized y --state-dir z --max-sessions many
expect_error 2 "$gateway" --identity x --authorized y --state-dir z --tls-cert only-cert.pem
expect_error 2 "$gateway" --identity x --authorized y --state-dir z --inbox-max-messages 0
expect_error 2 "$gateway" --identity x --authorized y --state-dir z --replay-window 0
expect_error 6 "$gateway" --identity "$TEST_TMP/missing-key" --authorized "$TEST_TMP/auth" --state-dir "$TEST_TMP/state"
expect_contains "$err" "missing-key"

# --- keys, authorized file -------------------------------------------------------------------

make_identities gateway host42 soc
agent_pub=$(<"$TEST_TMP/host42.pub")
backend_pub=$(<"$TEST_TMP/soc.pub")
auth=$TEST_TMP/authorized
{
    echo "# test fleet"
    echo "# host42, the agent"
    echo "role=agent,id=host42 $agent_pub"
    echo ""
    echo "role=backend,id=soc,sub=agent.*.anomalies $backend_pub"
} >"$auth"

expect_error 6 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/no-auth" --state-dir "$TEST_TMP/state"
expect_contains "$err" "no-auth"
# A malformed line stops the start (it would revoke a host if skipped), naming every bad line.
sed -e 's/^# host42, the agent$/role=agent,id=host42 this-is-not-a-key/' -e '$a role=wizard,id=x '"$agent_pub" \
    "$auth" >"$TEST_TMP/bad-auth"
expect_error 6 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/bad-auth" --state-dir "$TEST_TMP/state"
expect_contains "$err" "has 2 bad lines, none applied"
expect_contains "$err" "bad-auth:2: "
expect_contains "$err" "bad-auth:6: "
touch "$TEST_TMP/a-file"
expect_error 6 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$auth" --state-dir "$TEST_TMP/a-file"
# A state file that is not the gateway's is refused, never reset.
mkdir -m 700 "$TEST_TMP/foreign-state"
head -c 8192 /dev/urandom >"$TEST_TMP/foreign-state/gateway.db"
cp "$TEST_TMP/foreign-state/gateway.db" "$TEST_TMP/foreign.copy"
expect_error 6 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$auth" --state-dir "$TEST_TMP/foreign-state"
expect_contains "$err" "gateway.db"
cmp -s "$TEST_TMP/foreign-state/gateway.db" "$TEST_TMP/foreign.copy" || fail "the foreign state file was changed"
check_passed

# --- a running gateway -----------------------------------------------------------------------

log=$TEST_TMP/gateway.log
"$gateway" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --state-dir "$TEST_TMP/state" --handshake-timeout 2 2>"$log" &
pid=$!
at_exit kill -KILL "$pid"

wait_for_log() { # wait_for_log NEEDLE [COUNT]: until NEEDLE appears COUNT times in the log
    local needle=$1 count=${2:-1} i
    for ((i = 0; i < 100; i++)); do
        (($(grep -cF -- "$needle" "$log") >= count)) && return 0
        kill -0 "$pid" 2>/dev/null || fail "gateway exited early: $(cat "$log")"
        sleep 0.1
    done
    fail "no '$needle' in the gateway log: $(cat "$log")"
}

wait_for_log "admin endpoint on"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
admin=$(sed -n 's/.*admin endpoint on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
[[ -n $port && -n $admin ]] || fail "cannot read the ports from: $(cat "$log")"
check_passed
[[ $(stat -c %a "$TEST_TMP/state") == 700 ]] || fail "state directory is not 0700"
check_passed

logged=$(cat "$log")
expect_contains "$logged" "2 authorized identities" "the log"
expect_not_contains "$logged" "aegis-ed25519-secret" "the log"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z aegis-gateway: listening on 127\.0\.0\.1:[0-9]+' "$log" ||
    fail "no timestamped 'listening on' line: $(cat "$log")"
check_passed

http_get() { admin_port=$admin admin_http GET "$1"; } # http_get PATH: prints "STATUS BODY"

expect_contains "$(http_get /healthz)" "200 ok" "/healthz"
metrics=$(http_get /metrics)
expect_contains "$metrics" "# TYPE aegis_gateway_sessions gauge" "/metrics"
expect_contains "$metrics" "aegis_gateway_sessions 0" "/metrics"
expect_contains "$metrics" 'aegis_gateway_handshakes_total{result="ok"} 0' "/metrics"
expect_contains "$metrics" "# TYPE aegis_gateway_refusals_total counter" "/metrics"
expect_contains "$metrics" "aegis_gateway_bytes_in_total" "/metrics"
expect_contains "$metrics" "aegis_gateway_inbox_messages 0" "/metrics"
expect_contains "$metrics" 'aegis_gateway_inbox_dropped_total{cause="full"} 0' "/metrics"
[[ -s $TEST_TMP/state/gateway.db ]] || fail "no gateway.db in the state directory"
check_passed
expect_contains "$(http_get /nope)" "404" "an unknown admin path"

# The port is taken: exit 1 with one line.
expect_error 1 "$gateway" --listen "127.0.0.1:$port" --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --state-dir "$TEST_TMP/state"
expect_contains "$err" "$port"
expect_eq "$(grep -o "cannot listen" <<<"$err" | wc -l)" 1 "times 'cannot listen' is said"
expect_error 1 "$gateway" --listen 127.0.0.1:0 --admin "127.0.0.1:$port" --identity "$TEST_TMP/gateway" \
    --authorized "$auth" --state-dir "$TEST_TMP/state"
expect_match "$err" "admin endpoint: cannot listen on 127.0.0.1:$port: bind: " "a taken admin port"
# A port out of range is a usage error; an unreadable TLS certificate or key is bad input.
expect_error 2 "$gateway" --listen 127.0.0.1:99999 --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --state-dir "$TEST_TMP/state"
expect_contains "$err" "99999"
expect_error 6 "$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --state-dir "$TEST_TMP/state" --tls-cert "$TEST_TMP/no-cert.pem" --tls-key "$TEST_TMP/no-key.pem"
expect_contains "$err" "no-cert.pem"
expect_contains "$err" "No such file or directory"

# --- garbage on the WebSocket port -------------------------------------------------------------

python3 - "$port" <<'PY' || fail "garbage client failed"
import base64, os, socket, struct, sys
port = int(sys.argv[1])

def quietly(action):
    try:
        action()
    except OSError:
        pass  # the gateway may close first: that is the point

# Raw bytes that are not HTTP at all, and a half-written upgrade.
for junk in (os.urandom(64), b"\x00" * 4096, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    quietly(lambda: s.sendall(junk))
    s.close()

def upgraded():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    assert b" 101 " in answer.split(b"\r\n")[0], answer
    return s

def frame(payload, opcode=2, masked=True):
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

# Garbage binary messages as the handshake, of several sizes.
for size in (0, 1, 40, 300, 70000):
    s = upgraded()
    quietly(lambda: s.sendall(frame(os.urandom(size)) + frame(os.urandom(size))))
    quietly(lambda: s.recv(4096))
    s.close()

# WebSocket-level violations: an unmasked client frame, a reserved opcode, a lie about the length.
for bad in (frame(os.urandom(10), masked=False), frame(os.urandom(10), opcode=0x3),
            bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 62) + os.urandom(8)):
    s = upgraded()
    quietly(lambda: s.sendall(bad))
    quietly(lambda: s.recv(4096))
    s.close()
PY
check_passed
# Once the garbage is counted, the gateway has handled it (or died of it).
garbage_counted() { gone "$pid" || http_get /metrics | grep -qF 'reason="malformed"'; }
wait_for "the garbage to be handled" 10 garbage_counted
kill -0 "$pid" 2>/dev/null || fail "the gateway died after garbage: $(cat "$log")"
check_passed
expect_contains "$(http_get /healthz)" "200 ok" "/healthz after garbage"
metrics=$(http_get /metrics)
expect_contains "$metrics" 'aegis_gateway_handshakes_total{result="failed",reason="malformed"}' "/metrics after garbage"
expect_contains "$(cat "$log")" "refused peer=127.0.0.1:" "the log"

# --- SIGHUP re-reads the authorized file ---------------------------------------------------------

echo "role=agent,id=host43 $backend_pub duplicate key" >>"$auth"
kill -HUP "$pid"
wait_for_log "reloaded $auth"
logged=$(cat "$log")
expect_contains "$logged" "SIGHUP" "the log"
expect_contains "$logged" "$auth:6: " "the log (duplicate key warning with its line)"
expect_contains "$logged" "reloaded $auth: 2 identities" "the log"

expect_contains "$(http_get /metrics)" "aegis_gateway_config_last_reload_successful 1" "/metrics after a reload"
# A bad line on SIGHUP: nothing applied (host42 stays), logged with its number, counted.
cp "$auth" "$TEST_TMP/auth.good"
echo "role=agent,id=host44 not-a-key" >>"$auth"
kill -HUP "$pid"
wait_for_log "reload failed"
expect_contains "$(cat "$log")" "$auth:7: " "the log (the bad line with its number)"
metrics=$(http_get /metrics)
expect_contains "$metrics" "aegis_gateway_reload_failures_total 1" "/metrics after a refused reload"
expect_contains "$metrics" "aegis_gateway_config_last_reload_successful 0" "/metrics after a refused reload"
cp "$TEST_TMP/auth.good" "$auth"
kill -HUP "$pid"
wait_for_log "reloaded $auth" 2
expect_contains "$(http_get /metrics)" "aegis_gateway_config_last_reload_successful 1" "/metrics after a good reload"

rm "$auth"
kill -HUP "$pid"
wait_for_log "reload failed" 2
kill -0 "$pid" 2>/dev/null || fail "the gateway died when its authorized file vanished"
expect_contains "$(http_get /metrics)" "aegis_gateway_reload_failures_total 2" "/metrics"
check_passed

# --- wss:// with a certificate ---------------------------------------------------------------------

command -v openssl >/dev/null || fail "no openssl command (scripts/deps.sh installs it)"
{
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout "$TEST_TMP/tls.key" \
        -out "$TEST_TMP/tls.crt" >/dev/null 2>&1 || fail "openssl could not make a test certificate"
    echo "role=agent,id=host42 $agent_pub" >"$TEST_TMP/auth-tls"
    tls_log=$TEST_TMP/tls.log
    "$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/auth-tls" \
        --state-dir "$TEST_TMP/state" --tls-cert "$TEST_TMP/tls.crt" --tls-key "$TEST_TMP/tls.key" 2>"$tls_log" &
    tls_pid=$!
    at_exit kill -KILL "$tls_pid"
    wait_for "the TLS gateway to listen" 10 grep -q "listening on" "$tls_log"
    expect_contains "$(cat "$tls_log")" "(wss)" "the TLS gateway log"
    tls_port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tls_log" | head -1)
    python3 - "$tls_port" <<'PY' || fail "no WebSocket upgrade over TLS"
import base64, os, socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        answer = s.recv(4096)
        assert b" 101 " in answer.split(b"\r\n")[0], answer
PY
    check_passed

    # A plain HTTP client on the TLS port is logged as the TLS failure it is.
    python3 - "$tls_port" <<'PY' || fail "plain client on the TLS port"
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
    try:
        s.recv(4096)
    except OSError:
        pass
PY
    wait_for "the TLS failure in the log" 10 grep -q "reason=tls_failed" "$tls_log"
    expect_match "$(cat "$tls_log")" "refused peer=127\.0\.0\.1:[0-9]+ reason=tls_failed: TLS handshake failed: .*http request" \
        "the TLS gateway log"

    # SIGHUP re-reads the certificate and key: new connections get the new pair.
    served_cert() { # the SHA-256 of the certificate the TLS port serves now
        python3 - "$tls_port" <<'PY'
import hashlib, socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as s:
        print(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest())
PY
    }
    cert_hash() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
    expect_eq "$(served_cert)" "$(cert_hash "$TEST_TMP/tls.crt")" "the certificate served at start"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=renewed -keyout "$TEST_TMP/tls2.key" \
        -out "$TEST_TMP/tls2.crt" >/dev/null 2>&1 || fail "openssl could not make a second certificate"
    cp "$TEST_TMP/tls2.crt" "$TEST_TMP/tls.crt"
    cp "$TEST_TMP/tls2.key" "$TEST_TMP/tls.key"
    kill -HUP "$tls_pid"
    wait_for "the certificate reload" 10 grep -q "reloaded TLS certificate" "$tls_log"
    expect_contains "$(cat "$tls_log")" "reloaded TLS certificate $TEST_TMP/tls.crt" "the TLS gateway log"
    expect_eq "$(served_cert)" "$(cert_hash "$TEST_TMP/tls2.crt")" "the certificate served after SIGHUP"
    # A key that does not load: the reload is refused whole, the pair in use stays.
    echo "not a key" >"$TEST_TMP/tls.key"
    kill -HUP "$tls_pid"
    wait_for "the refused reload" 10 grep -q "reload failed" "$tls_log"
    expect_contains "$(cat "$tls_log")" "reload failed, keeping the previous authorized keys, revocation list, TLS certificate and channel controls" \
        "the TLS gateway log"
    expect_eq "$(served_cert)" "$(cert_hash "$TEST_TMP/tls2.crt")" "the certificate served after a failed reload"

    kill -TERM "$tls_pid"
    wait "$tls_pid"
    [[ $? == 0 ]] || fail "TLS gateway: SIGTERM did not exit 0"
    check_passed
}

# --- SIGTERM: graceful stop, exit 0 ---------------------------------------------------------------

kill -TERM "$pid"
wait_for "the gateway to stop on SIGTERM" 10 gone "$pid"
wait "$pid"
status=$?
[[ $status == 0 ]] || fail "SIGTERM: exit $status, expected 0: $(cat "$log")"
check_passed
expect_contains "$(cat "$log")" "shutting down" "the log"

summary
