#!/usr/bin/env bash
# aegis-connect against a wss:// gateway whose certificate a test CA signed: --ca-file (and
# SSL_CERT_FILE) make it trusted; without them, or with the wrong scheme or a proxy URL it
# cannot use, the start fails at once with the reason and its exit status, instead of retrying
# until --timeout.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$gateway" "$connect" "$send" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done
# A CA, and a gateway certificate it signs for localhost and 127.0.0.1.
make_tls_pki

make_identities gateway host42
authorize agent host42
start_gateway --tls-cert "$pki/gw.crt" --tls-key "$pki/gw.key"
glog=$gateway_log
port=$gateway_port

sock=$TEST_TMP/a.sock
common=(--identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub" --socket "$sock"
    --state-dir "$TEST_TMP/state" --backoff-min 0.2 --backoff-max 0.5 --heartbeat 0)

# run_quickly CODE CMD...: expect_error, and it took less than 10 s of a 30 s --timeout.
run_quickly() {
    local code=$1 started=$SECONDS
    shift
    expect_error "$code" "$@" --timeout 30
    ((SECONDS - started < 10)) || fail "'$*' took $((SECONDS - started)) s: it waited instead of failing at once"
    check_passed
}

# Not trusted: exit 4 at once, with OpenSSL's reason.
run_quickly 4 "$connect" "wss://localhost:$port/" "${common[@]}"
expect_contains "$err" "TLS certificate verify failed"
expect_contains "$err" "unable to get local issuer certificate"
[[ ! -e $sock ]] || fail "a failed start left a socket behind"
check_passed

# ws:// on the wss:// port: the gateway only hangs up, as one over its connection limit does, so
# the broker retries; the error it gives up with says which scheme to use.
run "$connect" "ws://127.0.0.1:$port/" "${common[@]}" --timeout 2
expect_eq "$status" 5 "the exit status of ws:// on a wss:// port"
expect_contains "$err" "use wss://"
expect_match "$(cat "$glog")" "reason=tls_failed: TLS handshake failed: .*http request" "the gateway log"

# Proxy URLs it cannot use: exit 2 at once, naming the option.
for proxy in 127.0.0.1:18888 https://127.0.0.1:18888 http://user:secret@127.0.0.1:18888 http://127.0.0.1:18888/path; do
    run_quickly 2 "$connect" "wss://localhost:$port/" "${common[@]}" --ca-file "$pki/ca.crt" --proxy "$proxy"
    expect_contains "$err" "--proxy"
    expect_not_contains "$err" "secret" "the error line (a password in a proxy URL)"
done

# --ca-file: only for wss://, and a file that loads.
run_quickly 2 "$connect" "ws://127.0.0.1:$port/" "${common[@]}" --ca-file "$pki/ca.crt"
expect_contains "$err" "--ca-file"
run_quickly 6 "$connect" "wss://localhost:$port/" "${common[@]}" --ca-file "$pki/missing.crt"
expect_contains "$err" "missing.crt"

# Trusted through --ca-file, by host name and by address.
for host in localhost 127.0.0.1; do
    expect_exit 0 "$connect" "wss://$host:$port/" "${common[@]}" --ca-file "$pki/ca.crt"
    expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.tests -m "over wss via $host"
    expect_exit 0 "$connect" --stop --socket "$sock"
done

# Trusted through SSL_CERT_FILE, OpenSSL's system store.
run env SSL_CERT_FILE="$pki/ca.crt" "$connect" "wss://localhost:$port/" "${common[@]}"
expect_eq "$status" 0 "aegis-connect with SSL_CERT_FILE ($err)"
expect_exit 0 "$send" --socket "$sock" --wait-ack agent.host42.tests -m "over wss via SSL_CERT_FILE"
expect_exit 0 "$connect" --stop --socket "$sock"

summary
