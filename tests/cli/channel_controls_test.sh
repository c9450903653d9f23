#!/usr/bin/env bash
# Channel controls and per-topic statistics, with real processes on 127.0.0.1: a channel is
# disabled on the admin endpoint while an agent streams 5000 lines to it; nothing of it is
# delivered while it is disabled, other channels keep flowing, the gateway restarts with the
# channel still disabled, a malformed controls file on SIGHUP changes nothing, and once a
# SIGHUP with a good file enables it every line arrives exactly once, none dead-lettered.
# The gateway's per-topic counters and the brokers' per-channel counts match what was sent.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=5000

json_field() { "$python" -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None else v)' "$1"; }
# http METHOD PATH [BODY]: prints "STATUS BODY" from the admin endpoint.
http() { admin_port=$admin admin_http "$@"; }
# metric NAME{LABELS}: the value of one series in /metrics (empty when absent).
metric() {
    http GET /metrics | "$python" -c 'import sys
for line in sys.stdin.read().removeprefix("200 ").splitlines():
    name, _, value = line.rpartition(" ")
    if name == sys.argv[1]: print(value)' "$1"
}

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
auth=$TEST_TMP/authorized
controls=$TEST_TMP/controls

# --- options: a controls file that does not parse stops the start ---------------------------

printf 'agent.*.logs\nagent..logs\n' >"$controls"
expect_error 6 "$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --state-dir "$TEST_TMP/gw-state" --channel-controls "$controls"
expect_contains "$err" "$controls:2: " "the error names the file and line"
rm -f "$controls"

# --- a gateway, an agent and a backend ---------------------------------------------------------

start_gateway --admin 127.0.0.1:0 --channel-controls "$controls"
glog=$gateway_log port=$gateway_port admin=$gateway_admin
start_broker host42 --heartbeat 0
a_sock=$broker_sock
start_broker soc --heartbeat 0
b_sock=$broker_sock

"$sub" --socket "$b_sock" -C $((N + 1)) agent.host42.logs >"$TEST_TMP/logs.received" 2>"$TEST_TMP/logs.err" &
logs_pid=$!
at_exit kill "$logs_pid"
"$sub" --socket "$b_sock" -C 1 agent.host42.status >"$TEST_TMP/status.received" 2>&1 &
status_pid=$!
at_exit kill "$status_pid"
subscribed() { "$stat" --json --socket "$b_sock" | grep -q '"agent.host42.status"' &&
    "$stat" --json --socket "$b_sock" | grep -q '"agent.host42.logs"'; }
wait_for "the backend's subscriptions" 30 subscribed

# --- disabled on the admin endpoint while the agent streams -----------------------------------

expect_eq "$(http GET /channels)" "200 " "GET /channels with nothing disabled"
expect_eq "$(http POST /channels/disable 'agent.*.logs')" "200 disabled agent.*.logs" "POST /channels/disable"
expect_match "$(http POST /channels/disable 'agent..logs')" "^400 .*agent\.\.logs" "an invalid pattern"
expect_eq "$(http GET /channels)" "200 agent.*.logs" "GET /channels"
expect_contains "$(cat "$controls")" $'\nagent.*.logs' "the controls file after the change"
expect_mode 600 "$controls"
expect_match "$(cat "$glog")" "channel control: disabled agent\.\*\.logs by admin 127\.0\.0\.1:[0-9]+" "the log"
expect_eq "$(metric 'aegis_gateway_channel_control_changes_total{action="disable",source="admin"}')" 1 "changes"

for ((chunk = 0; chunk < 10; chunk++)); do
    seq $((chunk * N / 10 + 1)) $(((chunk + 1) * N / 10)) | sed 's/^/line-/' |
        "$send" --socket "$a_sock" -l agent.host42.logs >/dev/null || fail "aegis-send -l failed"
    sleep 0.1
done
seq 1 "$N" | sed 's/^/line-/' >"$TEST_TMP/logs.sent"
echo wait-ack-line >>"$TEST_TMP/logs.sent"

expect_error 4 "$send" --socket "$a_sock" --wait-ack --timeout 20s agent.host42.logs -m wait-ack-line
expect_contains "$err" "channel disabled at the gateway: agent.host42.logs matches the disabled pattern agent.*.logs"
expect_contains "$err" "stays queued"

# Other channels are not held up behind the disabled one.
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.status -m status-while-disabled
wait "$status_pid" || fail "the status subscriber failed: $(cat "$TEST_TMP/status.received")"
expect_eq "$(cat "$TEST_TMP/status.received")" status-while-disabled "a message to another channel meanwhile"

refused() { (($(metric 'aegis_gateway_topic_refusals_total{topic="agent.*.logs",reason="channel_disabled"}') > 0)); }
wait_for "refusals of agent.*.logs" 30 refused
# Batches sent before the first refusal came back, and each probe, are in flight for a moment
# (and may fill a listing's first rows): the waiting ones say why they wait.
queue_says_held() {
    "$queue" --socket "$a_sock" ls --state waiting >"$TEST_TMP/queue-ls.log" 2>&1
    grep -qF \
        "agent.host42.logs (waiting: channel_disabled: agent.host42.logs matches the disabled pattern agent.*.logs)" \
        "$TEST_TMP/queue-ls.log"
}
wait_for "aegis-queue ls to say why agent.host42.logs waits" 30 queue_says_held
expect_exit 0 "$stat" --socket "$a_sock"
expect_contains "$out" "agent.host42.logs (waiting: channel_disabled:" "aegis-stat"
expect_exit 0 "$stat" --json --socket "$a_sock"
agent_json=$out
expect_eq "$(json_field queue.dead <<<"$agent_json")" 0 "dead letters while disabled"
"$python" -c 'import json,sys
s = json.load(sys.stdin)
rows = {r["channel"]: r for r in s["channels"]}
held = rows["agent.host42.logs"]["held"]
assert held["reason"] == "channel_disabled", held
assert rows["agent.host42.status"]["published"] == 1 and rows["agent.host42.status"]["held"] is None, rows
assert s["queue"]["waiting"] + s["queue"]["in_flight"] == int(sys.argv[1]), s["queue"]' $((N + 1)) <<<"$agent_json" ||
    fail "aegis-stat --json of the agent: $agent_json"
check_passed
expect_eq "$(grep -c . "$TEST_TMP/logs.received")" 0 "lines delivered while disabled"

# --- the gateway restarts: still disabled; changes from a non-loopback endpoint are refused -------

kill -TERM "$gateway_pid"
wait "$gateway_pid"
start_gateway --listen "127.0.0.1:$port" --admin 0.0.0.0:0 --channel-controls "$controls"
admin=$gateway_admin
expect_contains "$(cat "$glog")" "channels disabled by $controls: agent.*.logs" "the log after the restart"
expect_eq "$(http GET /channels)" "200 agent.*.logs" "GET /channels after the restart"
expect_eq "$(http POST /channels/enable 'agent.*.logs')" \
    "403 channel controls change only on an admin endpoint listening on loopback" "a change on an endpoint that does not listen on loopback"
expect_eq "$(http GET /channels)" "200 agent.*.logs" "GET /channels after the refused change"
wait_for "the agent to reconnect" 30 connected "$a_sock"
wait_for "the backend to reconnect" 30 connected "$b_sock"
wait_for "refusals after the restart" 60 refused

# --- a malformed controls file on SIGHUP changes nothing ----------------------------------------

printf '# no logs\nbackend.all.tests\nagent..logs\n' >"$controls"
kill -HUP "$gateway_pid"
wait_for "the failed reload" 30 grep -q "reload failed, keeping the previous authorized keys, revocation list, TLS certificate and channel controls: $controls:3: " "$glog"
expect_eq "$(http GET /channels)" "200 agent.*.logs" "GET /channels after a malformed file"
expect_eq "$(metric 'aegis_gateway_channel_control_changes_total{action="enable",source="reload"}')" 0 "enables"
sleep 2
expect_eq "$(grep -c . "$TEST_TMP/logs.received")" 0 "lines delivered after the malformed file"

# --- a good file on SIGHUP enables the channel: every line, exactly once -------------------------

printf '# no logs\nbackend.all.tests\n' >"$controls"
kill -HUP "$gateway_pid"
wait_for "the reload" 30 grep -q "channel control: enabled agent.\*.logs by SIGHUP reload" "$glog"
expect_contains "$(cat "$glog")" "channel control: disabled backend.all.tests by SIGHUP reload" "the log"
expect_eq "$(http GET /channels)" "200 backend.all.tests" "GET /channels after the reload"
done_receiving() { ! kill -0 "$logs_pid" 2>/dev/null; }
wait_for "every line to arrive" 120 done_receiving
wait "$logs_pid" || fail "aegis-sub -C $((N + 1)) failed: $(cat "$TEST_TMP/logs.err")"
received=$(grep -c . "$TEST_TMP/logs.received")
distinct=$(sort -u "$TEST_TMP/logs.received" | grep -c .)
lost=$(comm -23 <(sort -u "$TEST_TMP/logs.sent") <(sort -u "$TEST_TMP/logs.received") | grep -c .)
echo "after enabling: sent=$((N + 1)) received=$received distinct=$distinct lost=$lost"
expect_eq "$received" $((N + 1)) "lines received"
expect_eq "$distinct" $((N + 1)) "distinct lines received"
expect_eq "$lost" 0 "lines lost"
queue_empty() { [[ $(status_field "$a_sock" queue.waiting) == 0 ]]; }
wait_for "the agent's queue to empty" 30 queue_empty

# --- counts by value ---------------------------------------------------------------------------

expect_exit 0 "$stat" --json --socket "$a_sock"
agent_json=$out
expect_eq "$(json_field queue.dead <<<"$agent_json")" 0 "dead letters"
expect_eq "$(json_field queue.in_flight <<<"$agent_json")" 0 "in flight"
"$python" -c 'import json,sys
rows = {r["channel"]: r for r in json.load(sys.stdin)["channels"]}
logs = rows["agent.host42.logs"]
assert logs["published"] == int(sys.argv[1]) and logs["received"] == 0 and logs["held"] is None, logs' $((N + 1)) \
    <<<"$agent_json" || fail "the agent's channel counts: $agent_json"
check_passed
expect_exit 0 "$stat" --socket "$a_sock"
expect_match "$out" "channels: +PUBLISHED +RECEIVED +CHANNEL" "aegis-stat's channel table"
expect_match "$out" " $((N + 1)) +0  agent\.host42\.logs" "aegis-stat's row of agent.host42.logs"
expect_exit 0 "$stat" --json --socket "$b_sock"
"$python" -c 'import json,sys
rows = {r["channel"]: r for r in json.load(sys.stdin)["channels"]}
assert rows["agent.host42.logs"]["received"] == int(sys.argv[1]), rows
assert rows["agent.host42.status"]["received"] == 1, rows' $((N + 1)) <<<"$out" || fail "the backend's counts: $out"
check_passed

# The restarted gateway saw every line (none had been stored before), and delivered each once.
expect_eq "$(metric 'aegis_gateway_topic_messages_in_total{topic="agent.*.logs"}')" $((N + 1)) "topic messages in"
expect_eq "$(metric 'aegis_gateway_topic_messages_out_total{topic="agent.*.logs"}')" $((N + 1)) "topic messages out"
bytes_in=$(metric 'aegis_gateway_topic_bytes_in_total{topic="agent.*.logs"}')
# Every line's payload is in the batches, with its envelope around it.
payload_bytes=$(($(tr -d '\n' <"$TEST_TMP/logs.sent" | wc -c)))
((bytes_in > payload_bytes)) || fail "topic bytes in ($bytes_in) not above the payload bytes ($payload_bytes)"
check_passed
expect_eq "$(metric 'aegis_gateway_channels_disabled')" 1 "patterns disabled"
expect_eq "$(metric 'aegis_gateway_channel_control_changes_total{action="enable",source="reload"}')" 1 "enables"
expect_eq "$(metric 'aegis_gateway_channel_control_changes_total{action="disable",source="reload"}')" 1 "disables"
metrics=$(http GET /metrics)
expect_not_contains "$metrics" "host42" "/metrics (host ids are never labels)"
# The exposition is well formed: every sample belongs to a family with HELP and TYPE, every line parses.
"$python" -c 'import re,sys
text = sys.stdin.read()
assert text.startswith("200 "), text[:40]
families, sample = set(), re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\n]*\",?)*\})? [0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
for line in text[4:].splitlines():
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        families.add(line.split()[2]); continue
    m = sample.match(line)
    assert m, "bad line: " + line
    name = m.group(1)
    base = re.sub(r"_(bucket|sum|count)$", "", name)  # the series of a histogram
    assert name in families or base in families, "no HELP/TYPE for " + line' <<<"$metrics" || fail "/metrics is not well formed"
check_passed
command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh installs Debian's prometheus)"
promtool check metrics <<<"${metrics#200 }" || fail "promtool check metrics failed"
check_passed

summary
