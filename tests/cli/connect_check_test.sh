#!/usr/bin/env bash
# aegis-connect --check URL: every step of the path to a gateway on a line (or one JSON object),
# the first failure named with its fix on one stderr line and its exit status (1 unreachable,
# 4 refused or key mismatch, 6 bad input), and nothing written to the broker's state directory.
# The part proxy runs the checks through a real HTTP CONNECT proxy (Debian's tinyproxy).
# Parts: proxy

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if part proxy; then
    command -v tinyproxy >/dev/null || skip "no tinyproxy (scripts/deps.sh installs it)"
fi
for tool in "$gateway" "$connect" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done

# A CA whose gateway certificate expired last week, beside the gateway's key.
make_identities gateway host42 stranger ca other
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I gw -r gateway -V -2w:-1w "$TEST_TMP/gateway.pub"
authorize agent host42
start_gateway --admin 127.0.0.1:0
port=$gateway_port
url=$gateway_url
state=$TEST_TMP/check-state
common=(--identity "$TEST_TMP/host42" --state-dir "$state" --timeout 10)

# check CODE ARGS...: aegis-connect --check ARGS, expecting CODE and, unless 0, one error line.
check() {
    local code=$1
    shift
    if ((code == 0)); then
        expect_exit 0 "$connect" --check "$@"
    else
        expect_error "$code" "$connect" --check "$@"
    fi
}

# step_line NAME: the output line of step NAME.
step_line() {
    grep -E "^(ok|FAIL) +$1 " <<<"$out"
}

if part main; then
    # Healthy: every step ok, each with its time.
    check 0 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub"
    for step in resolve tcp upgrade handshake clock key auth; do
        expect_match "$(step_line "$step")" "^ok +$step .* [0-9]+\.[0-9] ms$" "the $step line"
    done
    expect_contains "$(step_line tcp)" "127.0.0.1:$port"
    expect_contains "$(step_line key)" "$(fingerprint "$TEST_TMP/gateway.pub") is pinned"
    expect_contains "$(step_line auth)" "accepted as agent host42"
    expect_contains "$(step_line clock)" "agrees with this host's to the second"
    expect_lines 7 "$out" "the steps of a ws:// check"
    [[ ! -e $state ]] || fail "--check created the state directory $state"
    check_passed

    # --json: one object, parsed by python.
    check 0 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --json
    "$python" -c '
import json, sys
report = json.loads(sys.argv[1])
assert report["result"] == "ok" and report["exit"] == 0, report
names = [step["name"] for step in report["steps"]]
assert names == ["resolve", "tcp", "upgrade", "handshake", "clock", "key", "auth"], names
assert all(step["ok"] and step["ms"] >= 0 and step["detail"] for step in report["steps"]), report
' "$out" || fail "--json: $out"
    check_passed

    # An unknown host name: exit 1 at resolve.
    check 1 "ws://no-such-host.invalid:$port/" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub"
    expect_match "$(step_line resolve)" "^FAIL +resolve" "the resolve line"
    expect_contains "$err" "aegis-connect: error: resolve: "
    expect_contains "$err" "host name not found"
    expect_lines 1 "$out" "the steps of a check that fails first"

    # Connection refused: exit 1 at tcp, with the fix.
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$TEST_TMP/free"
    check 1 "ws://127.0.0.1:$(cat "$TEST_TMP/free")/" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub"
    expect_contains "$err" "tcp: cannot reach 127.0.0.1:"
    expect_contains "$err" "connection refused; check that aegis-gateway runs"
    expect_match "$(step_line tcp)" "^FAIL +tcp" "the tcp line"

    # A wrong pinned key: exit 4 at key, naming the key presented and the one pinned.
    check 4 "$url" "${common[@]}" --backend-key "$TEST_TMP/other.pub"
    expect_contains "$err" "key: server key does not match the pinned key: server presented $(fingerprint "$TEST_TMP/gateway.pub")"
    expect_contains "$err" "pinned key is $(fingerprint "$TEST_TMP/other.pub")"
    expect_match "$(step_line handshake)" "^ok " "the handshake line"
    expect_match "$(step_line key)" "^FAIL " "the key line"

    # An identity the gateway does not know: exit 4 at auth, with its reason.
    check 4 "$url" --identity "$TEST_TMP/stranger" --state-dir "$state" --timeout 10 --backend-key "$TEST_TMP/gateway.pub" --json
    expect_contains "$err" "auth: unknown identity"
    expect_contains "$err" "(reason unknown_identity)"
    expect_contains "$err" "authorize this key on the gateway"
    "$python" -c '
import json, sys
report = json.loads(sys.argv[1])
assert report["result"] == "failed" and report["exit"] == 4 and report["failed_step"] == "auth", report
assert report["steps"][-1]["name"] == "auth" and not report["steps"][-1]["ok"], report
' "$out" || fail "--json of a refusal: $out"
    check_passed
    grep -q "unknown_identity" "$gateway_log" || fail "the gateway did not log the refusal as unknown_identity"
    check_passed

    # --backend-ca and an expired gateway certificate: exit 4 at certificate, naming the dates.
    cat "$TEST_TMP/ca.pub" >"$TEST_TMP/cas"
    check 4 "$url" "${common[@]}" --backend-ca "$TEST_TMP/cas"
    expect_contains "$err" "certificate: certificate expired or not yet valid: gateway certificate serial"
    expect_match "$err" "is expired: valid from [0-9T:-]+Z to [0-9T:-]+Z; this host's time is " "the error line"
    # A fingerprint is base64 (+ and /): compared as text, not as a pattern.
    expect_match "$(step_line key)" "^ok +key " "the key line"
    expect_contains "$(step_line key)" "from CA $(fingerprint "$TEST_TMP/ca.pub")" "the key line"

    # Bad input and usage.
    check 6 "$url" --identity "$TEST_TMP/missing" --backend-key "$TEST_TMP/gateway.pub"
    check 2 "$url" "${common[@]}"
    check 2 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --stop
    expect_error 2 "$connect" "$url" --json
    [[ ! -e $state ]] || fail "--check created the state directory $state"
    check_passed

    # --accept-new: the check goes through, and records nothing.
    check 0 "$url" "${common[@]}" --accept-new
    expect_contains "$(step_line key)" "accepted on first use"
    [[ ! -e $state/known_backends ]] || fail "--check --accept-new recorded the key"
    check_passed

    # A broker of the same identity stays connected while --check passes: the check is a probe,
    # so the gateway opens, resumes and replaces nothing (the session keeps its start and peer).
    start_broker host42
    session_of_host42() {
        admin_http GET /sessions | "$python" -c '
import json, sys
body = sys.stdin.read().split(" ", 1)[1]
entry = next(s for s in json.loads(body)["sessions"] if s["id"] == "host42")
print(entry["connected"], entry["connected_since_ms"], entry["peer"])'
    }
    wait_for "host42 connected in the fleet view" 20 eval '[[ $(session_of_host42) == True* ]]'
    live=$(session_of_host42)
    probes() { admin_http GET /metrics | awk '$1 == "aegis_gateway_probes_total" { print $2 }'; }
    probes_before=$(probes)
    probe_lines=$(grep -c 'probe answered id=host42 ' "$gateway_log")
    check 0 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub"
    expect_contains "$(step_line auth)" "accepted as agent host42"
    expect_contains "$(step_line auth)" "no session opened or replaced"
    check 0 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --json
    expect_eq "$(session_of_host42)" "$live" "host42's live session after two checks"
    expect_eq "$(grep -c 'probe answered id=host42 ' "$gateway_log")" $((probe_lines + 2)) "probe lines in the log"
    expect_not_contains "$(cat "$gateway_log")" "replaced" "the gateway's log"
    expect_eq "$(probes)" $((probes_before + 2)) "aegis_gateway_probes_total"
    expect_exit 0 "$connect" --stop --socket "$TEST_TMP/host42.sock"

    # wss:// with an openssl-made certificate: trusted with --ca-file; untrusted fails at tls (exit 1).
    make_tls_pki
    start_gateway --name tls --tls-cert "$pki/gw.crt" --tls-key "$pki/gw.key"
    check 0 "$gateway_url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --ca-file "$pki/ca.crt"
    expect_match "$(step_line tls)" "^ok +tls +TLSv1\.[23], certificate CN ?= ?localhost from CN ?= ?Aegis test CA, valid [0-9-]+ [0-9:]+ UTC to " "the tls line"
    expect_lines 8 "$out" "the steps of a wss:// check"
    check 1 "wss://localhost:$gateway_port/" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub"
    expect_contains "$err" "tls: cannot reach localhost:$gateway_port: TLS certificate verify failed"
    expect_contains "$err" "certificate CN"
    expect_contains "$err" "--ca-file"
    expect_match "$(step_line tls)" "^FAIL +tls" "the tls line"
    check 6 "$gateway_url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --ca-file "$pki/missing.crt"
    [[ ! -e $state ]] || fail "--check created the state directory $state"
    check_passed
fi

if part proxy; then
    # start_proxy NAME [DIRECTIVES...]: tinyproxy on a free loopback port, config written here.
    start_proxy() {
        local name=$1 proxy_port
        shift
        proxy_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        {
            echo "Port $proxy_port"
            echo "Listen 127.0.0.1"
            echo "Timeout 30"
            echo "Allow 127.0.0.1"
            echo "LogLevel Info"
            echo "MaxClients 20"
            [[ $(id -u) == 0 ]] && echo "User nobody" && echo "Group nogroup"
            printf '%s\n' "$@"
        } >"$TEST_TMP/$name.conf"
        # In the foreground without a LogFile it logs to standard error.
        tinyproxy -d -c "$TEST_TMP/$name.conf" >>"$TEST_TMP/$name.log" 2>&1 &
        at_exit kill "$!"
        wait_for "tinyproxy $name to listen" 10 "$python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$proxy_port"
        proxy_url=http://127.0.0.1:$proxy_port
    }

    # A proxy that lets CONNECT through to the gateway's port; loopback URLs skip proxies from
    # the environment, so the proxy is given with --proxy.
    start_proxy open "ConnectPort $port"
    check 0 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --proxy "$proxy_url"
    expect_match "$(step_line proxy)" "^ok +proxy +CONNECT 127\.0\.0\.1:$port through 127\.0\.0\.1:[0-9]+: 200 " "the proxy line"
    expect_contains "$(step_line tcp)" "proxy 127.0.0.1:"
    expect_contains "$(step_line auth)" "accepted as agent host42"
    wait_for "tinyproxy to log the CONNECT" 10 grep -q "CONNECT" "$TEST_TMP/open.log"
    check_passed

    # The broker itself through the same proxy.
    start_broker host42 --proxy "$proxy_url" --heartbeat 0
    expect_exit 0 "$send" --socket "$broker_sock" --wait-ack agent.host42.tests -m "through the proxy"
    expect_exit 0 "$connect" --stop --socket "$broker_sock"

    # A proxy that refuses CONNECT to that port: exit 1 at proxy.
    start_proxy closed "ConnectPort 1"
    check 1 "$url" "${common[@]}" --backend-key "$TEST_TMP/gateway.pub" --proxy "$proxy_url"
    expect_match "$(step_line proxy)" "^FAIL +proxy" "the proxy line"
    expect_contains "$err" "proxy: cannot reach 127.0.0.1:$port: proxy 127.0.0.1:"
    expect_contains "$err" "answered 403"
    expect_contains "$err" "it must allow CONNECT"
fi

summary
