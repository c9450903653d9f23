#!/usr/bin/env bash
# Durable delivery through the gateway, with real processes on 127.0.0.1:
# (a) the gateway is killed with SIGKILL in the middle of a stream from an agent to a backend
#     subscriber and restarted on the same port and state directory: every message the agent's
#     broker queued arrives exactly once;
# (b) an agent whose broker is stopped gets, when it comes back, what the backend sent meanwhile
#     (stored in the gateway under the agent identity's kept subscription set).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${AEGIS_DURABILITY_MESSAGES:-2000}

# A local-socket client (PROTOCOL.md §8): `publish SOCKET CHANNEL N OUT` queues N messages
# "m-<i>" at a steady pace and writes the numbers the broker reported queued; `subscribe SOCKET
# PATTERN N OUT` writes every payload it receives, one a line, until it has N distinct ones and
# then 2 s more (so duplicates would show), 60 s have passed or the broker closed the socket.
cat >"$TEST_TMP/client.py" <<'PY'
import json, socket, struct, sys, time
mode, path, channel, count, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
buffer = b""
def send(header, payload=b""):
    text = json.dumps(header).encode()
    s.sendall(struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload)
def read(timeout):
    global buffer
    s.settimeout(timeout)
    while True:
        if len(buffer) >= 8:
            total, length = struct.unpack(">II", buffer[:8])
            if len(buffer) >= 4 + total:
                header = json.loads(buffer[8:8 + length])
                payload = buffer[8 + length:4 + total]
                buffer = buffer[4 + total:]
                return header, payload
        chunk = s.recv(1 << 16)
        if not chunk:
            raise EOFError
        buffer += chunk
send({"op": "hello", "v": 1, "id": 0, "client": "durability-test"})
read(10)
if mode == "publish":
    queued = []
    for i in range(count):
        send({"op": "publish", "id": i + 1, "channel": channel}, b"m-%d" % i)
        header, _ = read(30)
        if header.get("ok"):
            queued.append(i)
        if i % 20 == 19:
            time.sleep(0.02)  # a stream, not one burst: the gateway dies in the middle of it
    with open(out, "w") as f:
        f.write("".join("m-%d\n" % i for i in queued))
else:
    send({"op": "subscribe", "id": 1, "patterns": [channel]})
    got, distinct, deadline, done_at = [], set(), time.time() + 60, None
    while time.time() < deadline and (done_at is None or time.time() < done_at):
        try:
            header, payload = read(0.5)
        except socket.timeout:
            continue
        except EOFError:
            break  # the broker stopped
        if header.get("id") == 1 and "event" not in header:
            if not header.get("ok"):
                sys.exit("subscribe refused: %s" % header)
            with open(out + ".ready", "w"):
                pass
        if header.get("event") == "message":
            got.append(payload.decode())
            distinct.add(payload)
            if len(distinct) >= count and done_at is None:
                done_at = time.time() + 2
    with open(out, "w") as f:
        f.write("".join(p + "\n" for p in got))
PY

# --- keys, the gateway, two brokers ---------------------------------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway --admin 127.0.0.1:0
glog=$gateway_log
start_agent() {
    start_broker host42 --heartbeat 0
    a_sock=$broker_sock
}
start_agent
start_broker soc --heartbeat 0
b_sock=$broker_sock

# counts SENT_FILE RECEIVED_FILE LABEL: prints and checks sent/received/duplicated/lost.
counts() {
    local sent received distinct duplicated lost
    sent=$(grep -c . "$1")
    received=$(grep -c . "$2")
    distinct=$(sort -u "$2" | grep -c .)
    duplicated=$((received - distinct))
    lost=$(comm -23 <(sort -u "$1") <(sort -u "$2") | grep -c .)
    echo "$3: sent=$sent received=$received duplicated=$duplicated lost=$lost"
    expect_eq "$lost" 0 "$3: lost"
    expect_eq "$duplicated" 0 "$3: duplicated"
}

# --- (a) the gateway killed in the middle of a stream ---------------------------------------------------

"$python" "$TEST_TMP/client.py" subscribe "$b_sock" 'agent.host42.>' "$N" "$TEST_TMP/a.received" &
sub_pid=$!
wait_for "the backend subscriber" test -e "$TEST_TMP/a.received.ready"
"$python" "$TEST_TMP/client.py" publish "$a_sock" agent.host42.stream "$N" "$TEST_TMP/a.sent" &
pub_pid=$!
published_a_quarter() { (($(status_field "$a_sock" local.published) >= N / 4)); }
wait_for "a quarter of the stream to be queued" published_a_quarter
gone "$pub_pid" && fail "the stream was over before the gateway was killed"
check_passed
restart_gateway
wait "$pub_pid" || fail "the publishing client failed"
wait "$sub_pid" || fail "the subscribing client failed"
grep -qE "authenticated id=soc role=backend .* session=resumed resume_point=[0-9]+$" "$glog" ||
  fail "the gateway log has no resumed session of soc: $(cat "$glog")"
counts "$TEST_TMP/a.sent" "$TEST_TMP/a.received" "(a) gateway killed mid-stream"
expect_eq "$(grep -c . "$TEST_TMP/a.sent")" "$N" "(a) messages queued"

# --- (b) an agent away while the backend sends ------------------------------------------------------------

# The agent's subscriber is attached when its broker stops: the identity's subscription set at
# the gateway stays what it was, and routes into the agent's inbox while it is away.
"$python" "$TEST_TMP/client.py" subscribe "$a_sock" backend.host42.policies 1000000 "$TEST_TMP/b.first" &
first_pid=$!
wait_for "the agent's subscriber" test -e "$TEST_TMP/b.first.ready"
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "while here"
delivered_here() { (($(status_field "$a_sock" local.delivered) >= 1)); }
wait_for "the message at the agent's subscriber" delivered_here
expect_exit 0 "$connect" --stop --socket "$a_sock"
wait "$first_pid" || fail "the agent's first subscriber failed"
expect_eq "$(cat "$TEST_TMP/b.first")" "while here" "(b) the message while connected"
wait_for "the gateway to see the agent go" grep -q "disconnect id=host42" "$glog"
M=20
: >"$TEST_TMP/b.sent"
for ((i = 0; i < M; i++)); do
    expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.policies -m "away-$i"
    echo "away-$i" >>"$TEST_TMP/b.sent"
done
start_agent
"$python" "$TEST_TMP/client.py" subscribe "$a_sock" backend.host42.policies "$M" "$TEST_TMP/b.received" &
sub_pid=$!
wait "$sub_pid" || fail "the agent's subscriber after the restart failed"
counts "$TEST_TMP/b.sent" "$TEST_TMP/b.received" "(b) agent broker stopped while the backend sent"

summary
