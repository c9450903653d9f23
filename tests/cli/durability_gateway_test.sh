#!/usr/bin/env bash
# Durable delivery through the gateway, with real processes on 127.0.0.1:
# (a) the gateway is killed with SIGKILL in the middle of a stream from an agent to a backend
#     subscriber and restarted on the same port and state directory: every message the agent's
#     broker queued arrives exactly once;
# (b) an agent whose broker is stopped gets, when it comes back, what the backend sent meanwhile
#     (stored in the gateway under the agent identity's kept subscription set).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gateway=$AEGIS_BIN/aegis-gateway
connect=$AEGIS_BIN/aegis-connect
send=$AEGIS_BIN/aegis-send
sub=$AEGIS_BIN/aegis-sub
keygen=$AEGIS_BIN/aegis-keygen
for tool in "$gateway" "$connect" "$send" "$sub" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done
python=$(command -v python3) || fail "python3 is needed"
N=${AEGIS_DURABILITY_MESSAGES:-2000}

# wait_for DESCRIPTION COMMAND...: retries COMMAND for up to 30 seconds.
wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < 300; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}

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

for who in gateway host42 soc; do
    run "$keygen" -q -f "$TEST_TMP/$who" -C "$who"
    [[ $status == 0 ]] || fail "aegis-keygen failed: $err"
done
auth=$TEST_TMP/authorized
{
    echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")"
    echo "role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
} >"$auth"

glog=$TEST_TMP/gateway.log
gateway_pid=
start_gateway() { # start_gateway LISTEN
    "$gateway" --listen "$1" --identity "$TEST_TMP/gateway" --authorized "$auth" --state-dir "$TEST_TMP/gw-state" \
        --admin 127.0.0.1:0 2>>"$glog" &
    gateway_pid=$!
}
gateway_listening() { grep -c "listening on" "$glog"; }
# Restarts on the same port (it may take a moment to be free again).
restart_gateway() {
    local before attempt i
    before=$(gateway_listening)
    for ((attempt = 0; attempt < 50; attempt++)); do
        start_gateway "127.0.0.1:$port"
        for ((i = 0; i < 50; i++)); do
            (($(gateway_listening) > before)) && return 0
            kill -0 "$gateway_pid" 2>/dev/null || break
            sleep 0.1
        done
        sleep 0.2
    done
    fail "the gateway did not restart on port $port: $(tail -5 "$glog")"
}
start_gateway 127.0.0.1:0
at_exit kill -KILL "$gateway_pid"
wait_for "the gateway to listen" grep -q "listening on 127.0.0.1:" "$glog"
port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$glog" | head -1)
url="ws://127.0.0.1:$port/"

agent=$TEST_TMP/agent
backend=$TEST_TMP/backend
mkdir -p "$agent" "$backend"
a_sock=$agent/broker.sock
b_sock=$backend/broker.sock
timing=(--backoff-min 0.2 --backoff-max 1 --timeout 20)
start_agent() {
    expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub" \
        --socket "$a_sock" --state-dir "$agent/state" --heartbeat 0 "${timing[@]}"
}
start_agent
at_exit "$connect" --stop --socket "$a_sock"
expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/soc" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$b_sock" --state-dir "$backend/state" --heartbeat 0 "${timing[@]}"
at_exit "$connect" --stop --socket "$b_sock"

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
sleep 1
kill -0 "$pub_pid" 2>/dev/null || fail "the stream was over before the gateway was killed"
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
sleep 0.5
restart_gateway
at_exit kill -KILL "$gateway_pid"
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
sleep 0.5
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
