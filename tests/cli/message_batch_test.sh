#!/usr/bin/env bash
# The local delivery in both forms (PROTOCOL.md §8.4), with real processes on 127.0.0.1: one
# receiving broker, three subscribers on one channel at once:
# (a) an old-style client that does not ask for batches gets "message" events only;
# (b) a client that asks ("batch": true, offered in the broker's hello) gets "messages" events,
#     several messages in a frame;
# (c) aegis-sub, which asks when offered;
# every message reaches each of them once, with every field identical: id, channel, origin id,
# fingerprint and key, verified, sequence, timestamp, expiry, priority, kind, correlation,
# headers in order, payload bytes (some not text).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=300      # varied messages, published one at a time
LINES=3000 # a stream of lines, so that deliveries hold many messages
total=$((N + LINES))

# The local-socket client of the process tests (tests/cli/local_client.py says how it speaks).
client=$(dirname "${BASH_SOURCE[0]}")/local_client.py

start_agent_and_backend --heartbeat 0
channel=agent.host42.fields

"$python" "$client" subscribe "$b_sock" "$channel" "$total" "$TEST_TMP/json" --fields &
json_pid=$!
"$python" "$client" subscribe "$b_sock" "$channel" "$total" "$TEST_TMP/batch" --fields --batch &
batch_pid=$!
"$sub" --socket "$b_sock" --json -C "$total" -W 60 "$channel" >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
wait_for "the JSON subscriber" test -e "$TEST_TMP/json.ready"
wait_for "the batch subscriber" test -e "$TEST_TMP/batch.ready"
three_subscribers() { (($(status_field "$b_sock" local.subscribers) == 3)); }
wait_for "aegis-sub's subscription" three_subscribers

"$python" "$client" publish "$a_sock" "$channel" "$N" "$TEST_TMP/sent" --fields ||
    fail "the varied messages were not all queued"
seq 1 "$LINES" | sed 's/^/line-/' | "$send" --socket "$a_sock" -l -p high --ttl 1h -H source=seq "$channel" ||
    fail "aegis-send -l failed"

wait "$json_pid" || fail "the JSON subscriber failed"
wait "$batch_pid" || fail "the batch subscriber failed"
wait "$sub_pid" || fail "aegis-sub failed: $(cat "$TEST_TMP/sub.err")"

# (a), (b): the event kinds each client got.
json_events=$(cut -d' ' -f1 "$TEST_TMP/json.events" | sort -u)
expect_eq "$json_events" message "events of the client that did not ask"
batch_events=$(cut -d' ' -f1 "$TEST_TMP/batch.events" | sort -u)
expect_eq "$batch_events" messages "events of the client that asked"
largest=$(sort -k2 -n "$TEST_TMP/batch.events" | tail -n 1 | cut -d' ' -f2)
((largest > 1)) || fail "no messages event held more than one message (largest: $largest)"
check_passed
echo "batch client: $(grep -c . "$TEST_TMP/batch.events") messages events, up to $largest messages each"

# Every message once, every field identical in both forms.
expect_eq "$(grep -c . "$TEST_TMP/json")" "$total" "messages of the JSON client"
expect_eq "$(sort -u "$TEST_TMP/json" | grep -c .)" "$total" "distinct messages of the JSON client"
cmp -s <(sort "$TEST_TMP/json") <(sort "$TEST_TMP/batch") ||
    fail "the two clients got different messages: $(diff <(sort "$TEST_TMP/json") <(sort "$TEST_TMP/batch") | head -n 4)"
check_passed
# The fields vary as published: every priority, expiries, replies with correlations, headers.
"$python" - "$TEST_TMP/json" <<'PY' || fail "the delivered messages do not carry the published fields"
import json, sys
messages = [json.loads(line) for line in open(sys.argv[1])]
assert {m["priority"] for m in messages} == {"critical", "high", "normal", "low"}
assert {m["kind"] for m in messages} == {"event", "reply"}
assert all(("correlation" in m) == (m["kind"] == "reply") for m in messages)
assert any("expires_ms" in m for m in messages) and any("expires_ms" not in m for m in messages)
assert ["source", "seq"] in [h for m in messages for h in m["headers"]]
assert any(m["headers"][:1] == [["content-type", "text/plain"]] and m["headers"][2] == ["empty", ""] for m in messages)
assert any(not m["payload"].startswith("6d2d") and not m["payload"].startswith("6c696e65") for m in messages)
PY
check_passed

# (c) aegis-sub --json shows each message's fields as the JSON client read them.
"$python" - "$TEST_TMP/json" "$TEST_TMP/sub.out" <<'PY' || fail "aegis-sub printed other fields than the events carry"
import base64, json, sys
events = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    events[m["id"]] = m
printed = [json.loads(line) for line in open(sys.argv[2])]
assert len(printed) == len(events) == len({p["id"] for p in printed}), (len(printed), len(events))
for p in printed:
    m = events[p["id"]]
    payload = p["payload"].encode() if "payload" in p else base64.b64decode(p["payload_base64"])
    assert payload.hex() == m["payload"], p
    for key in ("channel", "origin_id", "origin_fingerprint", "verified", "sequence", "timestamp_ms", "priority", "kind"):
        assert p[key] == m[key], (key, p, m)
    assert p.get("expires_ms") == m.get("expires_ms"), p
    assert p["correlation"] == m.get("correlation"), p
    assert p["headers"] == dict(m["headers"]), p
PY
check_passed
expect_eq "$(cat "$TEST_TMP/sub.err")" "" "aegis-sub's standard error"

summary
