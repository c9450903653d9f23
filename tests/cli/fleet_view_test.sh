#!/usr/bin/env bash
# The fleet view: the gateway's GET /sessions lists every identity it knows (listed, connected by
# a line or a certificate, or known to its store) with whether it is connected, from where, since
# when, when last seen and how many messages wait for it; GET /readyz says it can take sessions;
# /metrics carries the build, the process, latency histograms and expiring certificates (promtool);
# aegis-stat --fleet prints the view as a table or JSON, and fails clearly on a bad address.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gateway host1 host2 soc ca web9
authorize agent host1
authorize agent host2
authorize backend soc
echo "@cert-authority $(cat "$TEST_TMP/ca.pub")" >>"$TEST_TMP/authorized"
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I web9 -r agent -z 77 -V +2d "$TEST_TMP/web9.pub"
start_gateway --admin 127.0.0.1:0

# sessions [JSON PATH]: GET /sessions (or a value in it, path by dots, list items by id).
sessions() {
    "$python" - "$gateway_admin" "$@" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/sessions", timeout=5) as r:
    value = json.load(r)
for key in (sys.argv[2].split(".") if len(sys.argv) > 2 else []):
    if isinstance(value, list):
        value = next(v for v in value if v["id"] == key)
    else:
        value = value[key]
print(json.dumps(value) if isinstance(value, (dict, list)) or value is None else value)
PY
}
readyz() { admin_http GET /readyz; }

expect_eq "$(readyz)" "200 ready" "GET /readyz"
expect_eq "$(sessions known)" 3 "identities known before anyone connects"
expect_eq "$(sessions connected)" 0 "sessions before anyone connects"

# host1 keeps a durable subscription, then goes away; soc stays; web9 connects by certificate.
start_broker host1
host1_sock=$broker_sock
expect_exit 0 "$sub" --socket "$host1_sock" --durable orders --drain -W 20 'backend.host1.>'
wait_for "host1's subscription at the gateway" 20 subscribed "$host1_sock" 'backend.host1.>'
expect_exit 0 "$connect" --stop --socket "$host1_sock"
start_broker soc
soc_sock=$broker_sock
start_broker web9
for i in 1 2 3; do
    expect_exit 0 "$send" --socket "$soc_sock" --wait-ack backend.host1.orders -m "order $i"
done

wait_for "two sessions in the view" 20 eval '[[ $(sessions connected) == 2 ]]'
expect_eq "$(sessions known)" 4 "identities known"
expect_eq "$(sessions sessions.soc.connected)" True "soc connected"
expect_match "$(sessions sessions.soc.peer)" '^127\.0\.0\.1:[0-9]+$' "soc's peer address"
expect_eq "$(sessions sessions.soc.authorized_by)" "line 3" "soc authorized by"
expect_match "$(sessions sessions.soc.session_age_s)" '^[0-9]+$' "soc's session age"
expect_eq "$(sessions sessions.web9.authorized_by)" certificate "web9 authorized by"
expect_eq "$(sessions sessions.web9.certificate.serial)" 77 "web9's certificate serial"
expect_eq "$(sessions sessions.web9.certificate.ca)" "$(fingerprint "$TEST_TMP/ca.pub")" "web9's CA"
expect_eq "$(sessions sessions.host1.connected)" False "host1 after its broker stopped"
expect_eq "$(sessions sessions.host1.inbox)" 3 "messages waiting for host1"
expect_match "$(sessions sessions.host1.last_seen_ms)" '^[0-9]{13}$' "host1 last seen"
expect_eq "$(sessions sessions.host2.last_seen_ms)" null "host2, never seen"
expect_eq "$(sessions sessions.host2.fingerprint)" "$(fingerprint "$TEST_TMP/host2.pub")" "host2's fingerprint"
# The software version each broker reported in its handshake: its --version line; none offline.
expect_exit 0 "$connect" --version
version=$(head -n 1 <<<"$out")
expect_match "$version" '^aegis-connect \(Aegis\) [0-9]+\.[0-9]+\.[0-9]+$' "aegis-connect --version"
expect_eq "$(sessions sessions.soc.version)" "$version" "soc's reported version"
expect_eq "$(sessions sessions.web9.version)" "$version" "web9's reported version"
expect_eq "$(sessions sessions.host1.version)" null "host1's version while offline"

# aegis-stat --fleet: the same as a table, or the JSON as it is.
expect_exit 0 "$stat" --fleet "http://127.0.0.1:$gateway_admin"
expect_match "$(sed -n 1p <<<"$out")" '^ID +ROLE +STATE +PEER +INBOX +VERSION +AUTHORIZED BY +FINGERPRINT$' "the table's header"
expect_match "$(grep '^host1 ' <<<"$out")" '^host1 +agent +offline, last seen [0-9a-z]+ ago +- +3 +- +line 1 +SHA256:' "host1's line"
expect_match "$(grep '^host2 ' <<<"$out")" '^host2 +agent +offline, last seen never +- +0 +- +line 2 ' "host2's line"
expect_match "$(grep '^soc ' <<<"$out")" '^soc +backend +connected [0-9a-z]+ +127\.0\.0\.1:[0-9]+ +0 +aegis-connect \(Aegis\) [0-9.]+ +line 3 ' "soc's line"
expect_match "$(grep '^web9 ' <<<"$out")" '^web9 +agent +connected [0-9a-z]+ +127\.0\.0\.1:[0-9]+ +0 +aegis-connect \(Aegis\) [0-9.]+ +serial 77, until 20' "web9's line"
expect_eq "$(tail -n 1 <<<"$out")" "4 known, 2 connected" "the table's last line"
expect_exit 0 "$stat" --fleet "127.0.0.1:$gateway_admin" --json
expect_eq "$("$python" -c 'import json,sys; print(json.load(sys.stdin)["known"])' <<<"$out")" 4 "--fleet --json"
# Clear failures: a bad address (2), https (2), nothing listening (1), not an admin endpoint (1).
expect_error 2 "$stat" --fleet "127.0.0.1"
expect_contains "$err" "is not http://HOST:PORT" "a bad --fleet address"
expect_error 2 "$stat" --fleet "https://127.0.0.1:$gateway_admin"
expect_contains "$err" "plain HTTP" "an https --fleet address"
expect_error 1 "$stat" --fleet "http://127.0.0.1:1"
expect_contains "$err" "cannot connect to 127.0.0.1:1" "--fleet with nothing listening"
expect_error 1 "$stat" --fleet "127.0.0.1:$gateway_port" --timeout 5
expect_error 2 "$stat" --fleet "127.0.0.1:$gateway_admin" --prometheus
expect_contains "$err" "--fleet cannot be combined" "--fleet with --prometheus"

# /metrics: build, process, histograms and expiring certificates, valid for promtool.
metrics=$(admin_http GET /metrics)
[[ $metrics == "200 "* ]] || fail "GET /metrics: ${metrics:0:80}"
metrics=${metrics#200 }
command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh installs Debian's prometheus)"
promtool check metrics <<<"$metrics" || fail "promtool check metrics failed"
check_passed
metric() { awk -v name="$1" '$1 == name { print $2 }' <<<"$metrics"; }
expect_match "$metrics" 'aegis_gateway_build_info\{version="[0-9.]+",revision="[^"]+"\} 1' "build_info"
expect_match "$(metric process_resident_memory_bytes)" '^[0-9.e+]+$' "process_resident_memory_bytes"
expect_match "$(metric process_open_fds)" '^[0-9]+$' "process_open_fds"
expect_match "$(metric process_start_time_seconds)" '^[0-9.e+]+$' "process_start_time_seconds"
(($(metric aegis_gateway_handshake_duration_seconds_count) >= 3)) || fail "fewer handshakes timed than made"
check_passed
(($(metric aegis_gateway_store_commit_duration_seconds_count) >= 3)) || fail "fewer commits timed than made"
check_passed
expect_eq "$(metric 'aegis_gateway_session_certificates_expiring{within="1d"}')" 0 "certificates expiring within a day"
expect_eq "$(metric 'aegis_gateway_session_certificates_expiring{within="7d"}')" 1 "certificates expiring within a week"

summary
