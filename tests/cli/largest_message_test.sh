#!/usr/bin/env bash
# The largest message aegis-send accepts reaches every kind of local subscriber (PROTOCOL.md
# §8.2): a 16 MiB payload whose headers fill the JSON header of the publish request to within
# 64 bytes of its 1 MiB limit. Its "message" event holds more than that (the message id, origin,
# sequence and time besides the headers): the broker sends frames larger than it accepts, and
# its clients read them. A durable subscriber (message events, kept in the inbox first), a
# client that does not ask for batches (message events, live) and aegis-sub (a "messages"
# event) each get it whole, headers and all.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

client=$(dirname "${BASH_SOURCE[0]}")/local_client.py

start_agent_and_backend --heartbeat 0
channel=agent.host42.big

# The durable subscription exists (and the gateway routes to it) before the message is published.
expect_exit 0 "$sub" --socket "$b_sock" --durable big --drain -W 20 "$channel"
"$sub" --socket "$b_sock" -C 1 -W 120 -F '%l %c' "$channel" >"$TEST_TMP/live.out" 2>"$TEST_TMP/live.err" &
live_pid=$!
"$python" "$client" subscribe "$b_sock" "$channel" 1 "$TEST_TMP/json" --fields &
json_pid=$!
wait_for "the JSON subscriber" test -e "$TEST_TMP/json.ready"
two_subscribers() { (($(status_field "$b_sock" local.subscribers) == 2)); }
wait_for "aegis-sub's subscription" two_subscribers

# 16 headers of '"' (two bytes each in JSON), sized so that the publish request's JSON header is
# 1 MiB less 64 bytes; the payload is the most aegis-send takes, 16 MiB.
"$python" - "$channel" "$TEST_TMP/headers" <<'PY'
import json, sys
channel, out = sys.argv[1], sys.argv[2]
limit = 1024 * 1024 - 64
def request(values):
    headers = [[f"h{i:02d}", '"' * v] for i, v in enumerate(values)]
    return {"channel": channel, "headers": headers, "id": 99, "kind": "event", "op": "publish",
            "priority": "normal", "wait_ack": True}
size = lambda values: len(json.dumps(request(values), separators=(",", ":"), ensure_ascii=False).encode())
values = [0] * 16
room = (limit - size(values)) // 2  # each value byte is 2 bytes of JSON
values = [room // 16] * 15 + [room - 15 * (room // 16)]
assert limit - 1 <= size(values) <= limit, size(values)
with open(out, "w") as f:
    for i, v in enumerate(values):
        f.write(f"-H\0h{i:02d}=" + '"' * v + "\0")
PY
mapfile -d '' header_args <"$TEST_TMP/headers"
head -c 16777216 /dev/zero | tr '\0' 'p' >"$TEST_TMP/payload"
"$send" --socket "$a_sock" "${header_args[@]}" "$channel" <"$TEST_TMP/payload" 2>"$TEST_TMP/send.err" ||
    fail "aegis-send refused the largest message: $(cat "$TEST_TMP/send.err")"

wait "$live_pid" || fail "aegis-sub did not get the message: $(cat "$TEST_TMP/live.err")"
expect_eq "$(cat "$TEST_TMP/live.out")" "16777216 $channel" "what aegis-sub got (a messages event)"
wait "$json_pid" || fail "the client without batches did not get the message"
"$python" - "$TEST_TMP/json" <<'PY' || fail "the message event does not carry the message whole"
import json, sys
messages = [json.loads(line) for line in open(sys.argv[1])]
assert len(messages) == 1, len(messages)
m = messages[0]
assert m["payload"] == "70" * 16777216
assert [h[0] for h in m["headers"]] == [f"h{i:02d}" for i in range(16)]
assert all(set(h[1]) == {'"'} for h in m["headers"])
PY
check_passed
durable=$("$sub" --socket "$b_sock" --durable big --drain -W 30 -F '%l %c' "$channel" 2>"$TEST_TMP/durable.err") ||
    fail "the durable subscriber did not get the message: $(cat "$TEST_TMP/durable.err")"
expect_eq "$durable" "16777216 $channel" "what the durable subscriber got (a message event)"
summary
