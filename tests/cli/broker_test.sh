#!/usr/bin/env bash
# aegis-connect as a process, without a gateway: options and exit codes, the local socket's
# permissions and SO_PEERCRED check, one broker per socket, stale sockets, daemonizing,
# --stop, --timeout, --foreground with SIGTERM, and malformed local requests answered with
# typed errors while the broker keeps serving. Also aegis-send/aegis-sub options and
# "no broker" behaviour. The part other-user (root, and a user nobody) checks that another
# user cannot use the socket even with every mode opened up.
# Parts: other-user

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if part other-user; then
    require_root "running a client as another user"
    id nobody >/dev/null 2>&1 || skip "no user nobody to run a client as"
fi
for tool in "$connect" "$send" "$sub" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done

# A local-protocol client for the checks the tools cannot make (garbage, raw frames).
ipc=$TEST_TMP/ipc.py
cat >"$ipc" <<'PY'
import json, os, socket, struct, sys

path, action = sys.argv[1], sys.argv[2]

def frame(header, payload=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s

def exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data

def read(s):
    prefix = exact(s, 8)
    if prefix is None:
        return None, None
    total, header_length = struct.unpack(">II", prefix)
    body = exact(s, total - 4)
    return json.loads(body[:header_length]), body[header_length:]

def closed(s):
    try:
        return s.recv(1) == b""
    except OSError:
        return True

def hello(s):
    s.sendall(frame({"op": "hello", "v": 1, "id": 0, "client": "test"}))
    answer, _ = read(s)
    assert answer["ok"], answer
    return answer

def reason(answer):
    return answer["error"]["reason"] if answer and not answer.get("ok") else "ok"

if action == "pid":
    print(hello(conn())["pid"])
elif action == "status":
    s = conn(); hello(s)
    s.sendall(frame({"op": "status", "id": 1}))
    print(json.dumps(read(s)[0]["status"]))
elif action == "malformed":
    out = []
    # Requests before hello, and a hello for a version this broker does not speak.
    s = conn()
    s.sendall(frame({"op": "status", "id": "early"}))
    answer, _ = read(s); out.append(f"before-hello={reason(answer)} id={answer['id']}")
    s.sendall(frame({"op": "hello", "v": 99, "id": 1}))
    answer, _ = read(s); out.append(f"hello-v99={reason(answer)} versions={answer.get('versions')}")
    hello(s)
    # Bad JSON, a header that is not an object, unknown op, missing and invalid fields:
    # each answered, and the same connection keeps working.
    s.sendall(frame(b"{not json"))
    out.append(f"bad-json={reason(read(s)[0])}")
    s.sendall(frame(b"[1,2,3]"))
    out.append(f"not-object={reason(read(s)[0])}")
    s.sendall(frame({"op": "explode", "id": 5}))
    answer, _ = read(s); out.append(f"unknown-op={reason(answer)} id={answer['id']} exit={answer['error']['exit']}")
    s.sendall(frame({"op": "publish", "id": 6}))
    out.append(f"missing-field={reason(read(s)[0])}")
    s.sendall(frame({"op": "publish", "id": 7, "channel": "agent.host42.x", "priority": "urgent"}))
    out.append(f"invalid-field={reason(read(s)[0])}")
    s.sendall(frame({"op": "publish", "id": 8, "channel": "agent..x"}))
    answer, _ = read(s); out.append(f"invalid-channel={reason(answer)} exit={answer['error']['exit']}")
    s.sendall(frame({"op": "publish", "id": 9, "channel": "agent.host42.binary"}, bytes(range(256)) * 4))
    answer, _ = read(s); out.append(f"binary-publish={reason(answer)} id={answer['id']} message_id={len(answer.get('message_id', ''))}")
    # Several messages in one frame (publish_batch), which the hello answer offers.
    s.sendall(frame({"op": "hello", "v": 1, "id": 20}))
    out.append(f"features={read(s)[0].get('features')}")
    s.sendall(frame({"op": "publish_batch", "id": 21, "channel": "agent.host42.batch", "lengths": [3, 0, 5]}, b"abcdefgh"))
    answer, _ = read(s); ids = answer.get("message_ids", [])
    out.append(f"batch={reason(answer)} ids={len(ids)} distinct={len(set(ids))} each={sorted({len(i) for i in ids})}")
    s.sendall(frame({"op": "publish_batch", "id": 25, "channel": "agent.host42.batch", "lengths": [2, 2],
                     "message_ids": False}, b"wxyz"))
    answer, _ = read(s)
    out.append(f"batch-count={reason(answer)} id={answer.get('id')} count={answer.get('count')} ids={'message_ids' in answer}")
    s.sendall(frame({"op": "publish_batch", "id": 22, "channel": "agent.host42.batch", "lengths": [3, 3]}, b"abcde"))
    answer, _ = read(s); out.append(f"batch-lengths={reason(answer)} exit={answer['error']['exit']}")
    s.sendall(frame({"op": "publish_batch", "id": 23, "channel": "agent.host42.batch", "lengths": [1], "wait_ack": True}, b"x"))
    out.append(f"batch-wait-ack={reason(read(s)[0])}")
    s.sendall(frame({"op": "publish_batch", "id": 24, "channel": "agent..x", "lengths": [1]}, b"x"))
    out.append(f"batch-channel={reason(read(s)[0])}")
    s.sendall(frame({"op": "status", "id": 10}))
    answer, _ = read(s)
    out.append(f"still-open={reason(answer)} waiting={answer['status']['queue']['waiting']}")
    # Framing that cannot be trusted: an error frame, then the connection is closed.
    for name, junk in (("huge-length", struct.pack(">II", 0xFFFFFFFF, 2) + b"{}"),
                       ("bad-header-length", struct.pack(">II", 10, 100) + b"x" * 10),
                       ("garbage", b"this is not a frame at all\n" * 4)):
        s = conn()
        s.sendall(junk)
        answer, _ = read(s)
        out.append(f"{name}={reason(answer)} closed={closed(s)}")
    # A client that vanishes mid-frame.
    s = conn(); hello(s)
    s.sendall(struct.pack(">II", 1000, 2) + b"{}")
    s.close()
    print("\n".join(out))
elif action == "other-user":
    # Run as another user: the broker must refuse even with the modes opened up.
    try:
        s = conn()
    except OSError as e:
        print(f"connect-failed={e.errno}")
        sys.exit(0)
    try:
        s.sendall(frame({"op": "hello", "v": 1, "id": 1}))
    except OSError:
        pass  # the broker may have closed already; its error frame is still there to read
    try:
        answer, _ = read(s)
    except OSError:
        answer = None
    print(f"answer={reason(answer) if answer else 'none'} closed={closed(s)}")
PY

if part main; then
    # --- options and exit codes -------------------------------------------------------------------

    expect_exit 0 "$connect" --version
    expect_contains "$out" "aegis-connect (Aegis)"
    expect_exit 0 "$connect" --help
    for option in --identity --backend-key --accept-new --socket --state-dir --foreground --no-wait --timeout \
        --backoff-min --backoff-max --heartbeat --proxy --log --stop --help --version; do
        expect_contains "$out" "$option" "aegis-connect --help"
    done
    expect_error 2 "$connect" --no-such-option
    expect_error 2 "$connect" --accept-new
    expect_contains "$err" "URL"
    expect_error 2 "$connect" ws://127.0.0.1:1/ --identity "$TEST_TMP/whatever"
    expect_contains "$err" "--backend-key, --backend-ca or --accept-new is required"
    expect_error 2 "$connect" http://127.0.0.1:1/ --accept-new
    expect_error 2 "$connect" ws://127.0.0.1:1/ --accept-new --backoff-min -1
    expect_error 2 "$connect" ws://127.0.0.1:1/ --accept-new --backoff-min 5 --backoff-max 1
    expect_error 2 "$connect" ws://127.0.0.1:1/ --accept-new --timeout soon

    for tool in "$send" "$sub"; do
        expect_exit 0 "$tool" --version
        expect_contains "$out" "$(basename "$tool") (Aegis)"
        expect_exit 0 "$tool" --help
        expect_contains "$out" "--socket"
        expect_error 2 "$tool" --no-such-option
        expect_error 2 "$tool"
    done
    expect_error 2 "$send" agent.host42.x -p urgent -m x
    expect_error 2 "$send" agent.host42.x -m x -f "$TEST_TMP/file"
    expect_error 2 "$send" agent.host42.x -m x --timeout 0
    expect_error 6 "$send" 'agent..x' -m x
    expect_contains "$err" "agent..x"
    expect_error 6 "$send" 'agent.*.x' -m x
    expect_error 2 "$sub" -C 0 backend.host42.x
    expect_error 2 "$sub" -W -1 backend.host42.x
    # A durable name that cannot be: the option is named (not a request field), before any broker.
    expect_error 2 "$sub" --socket "$TEST_TMP/none.sock" --durable 'bad name!' backend.host42.x
    expect_contains "$err" "--durable needs a name of 1 to 128 characters"
    expect_not_contains "$err" "field"
    expect_error 6 "$sub" 'backend.>.x'

fi

# --- keys ---------------------------------------------------------------------------------------

make_identities agent gateway
port=$($python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="ws://127.0.0.1:$port/" # nothing listens there: the broker keeps trying in the background
sock=$TEST_TMP/run/broker.sock
state=$TEST_TMP/state
base=(--identity "$TEST_TMP/agent" --backend-key "$TEST_TMP/gateway.pub" --state-dir "$state" --backoff-min 0.2
    --backoff-max 1)
common=("${base[@]}" --socket "$sock")

if part main; then
    expect_error 6 "$connect" "$url" --identity "$TEST_TMP/missing-key" --backend-key "$TEST_TMP/gateway.pub" --socket "$sock"
    expect_contains "$err" "missing-key"
    cp "$TEST_TMP/agent" "$TEST_TMP/agent-open"
    chmod 644 "$TEST_TMP/agent-open"
    expect_error 6 "$connect" "$url" --identity "$TEST_TMP/agent-open" --backend-key "$TEST_TMP/gateway.pub" --socket "$sock"
    expect_error 6 "$connect" "$url" --identity "$TEST_TMP/agent" --backend-key "aegis-ed25519 not-base64!" --socket "$sock"
    expect_contains "$err" "--backend-key"
    expect_error 6 "$connect" "$url" --identity "$TEST_TMP/agent" --backend-key "$TEST_TMP/no-such.pub" --socket "$sock"
    expect_contains "$err" "No such file or directory"
    # The gateway's secret key file where its public key belongs: refused, naming the .pub.
    expect_error 6 "$connect" "$url" --identity "$TEST_TMP/agent" --backend-key "$TEST_TMP/gateway" --socket "$sock"
    expect_contains "$err" "secret key file"
    expect_contains "$err" "$TEST_TMP/gateway.pub"
    [[ ! -e $sock ]] || fail "a failed start left a socket behind"
    check_passed

    # --- no broker ------------------------------------------------------------------------------------

    expect_error 3 "$send" --socket "$sock" agent.host42.x -m hello
    expect_contains "$err" "$sock"
    export AEGIS_SOCKET=$sock
    expect_error 3 "$send" agent.host42.x -m hello
    unset AEGIS_SOCKET
    expect_contains "$err" "$sock" "AEGIS_SOCKET is used"
    expect_error 3 "$sub" --socket "$sock" backend.host42.x
    expect_error 3 "$connect" --stop --socket "$sock"

fi

# --- a detached broker (--no-wait: no gateway is needed) ------------------------------------------

stop_broker() { "$connect" --stop --socket "$sock" >/dev/null 2>&1; }
expect_exit 0 "$connect" "$url" "${common[@]}" --no-wait
at_exit stop_broker
expect_contains "$out" "broker listening on $sock"
[[ -S $sock ]] || fail "no socket at $sock"
check_passed
expect_mode 700 "$TEST_TMP/run"
expect_mode 600 "$sock"
expect_mode 700 "$state"
expect_mode 600 "$state/broker.log"
pid=$($python "$ipc" "$sock" pid) || fail "no hello answer"
[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" || fail "no broker process '$pid'"
check_passed
[[ $(ps -o sid= -p "$pid" | tr -d ' ') == "$pid" || $(ps -o tty= -p "$pid" | tr -d ' ') == "?" ]] ||
    fail "the broker did not detach from the terminal"
check_passed
[[ $(readlink "/proc/$pid/cwd") == / ]] || fail "the broker's working directory is not /"
check_passed
status_json=$($python "$ipc" "$sock" status) || fail "no status answer"
expect_contains "$status_json" "\"url\": \"$url\"" "status"
expect_match "$status_json" '"state": "(connecting|backing_off)"' "status"

if part main; then
    # One broker per socket.
    expect_error 1 "$connect" "$url" "${common[@]}" --no-wait
    expect_contains "$err" "a broker is already running on $sock"
    kill -0 "$pid" || fail "the first broker died when a second one was refused"
    check_passed

    # Publishing while not connected: queued; --wait-ack times out; a subscription waits.
    expect_exit 0 "$send" --socket "$sock" agent.host42.anomalies -m queued
    echo "from stdin" | "$send" --socket "$sock" agent.host42.anomalies || fail "aegis-send from stdin failed"
    check_passed
    expect_error 5 "$send" --socket "$sock" --wait-ack --timeout 1 agent.host42.anomalies -m wait
    expect_error 5 "$sub" --socket "$sock" -W 1 backend.host42.policies
    status_json=$($python "$ipc" "$sock" status)
    expect_match "$status_json" '"waiting": 3' "status (queue depth)"

    # Malformed local requests: typed errors, and the broker keeps serving.
    answers=$($python "$ipc" "$sock" malformed) || fail "the malformed-request client failed: $answers"
    expect_contains "$answers" "before-hello=hello_required id=early"
    expect_contains "$answers" "hello-v99=version_mismatch versions=[1]"
    expect_contains "$answers" "bad-json=bad_json"
    expect_contains "$answers" "not-object=bad_request"
    expect_contains "$answers" "unknown-op=unknown_op id=5 exit=2"
    expect_contains "$answers" "missing-field=missing_field"
    expect_contains "$answers" "invalid-field=invalid_field"
    expect_contains "$answers" "invalid-channel=invalid_channel exit=6"
    expect_contains "$answers" "binary-publish=ok id=9 message_id=32"
    expect_contains "$answers" "features=['publish_batch', 'message_batch']"
    expect_contains "$answers" "batch=ok ids=3 distinct=3 each=[32]"
    expect_contains "$answers" "batch-count=ok id=25 count=2 ids=False"
    expect_contains "$answers" "batch-lengths=invalid_field exit=2"
    expect_contains "$answers" "batch-wait-ack=invalid_field"
    expect_contains "$answers" "batch-channel=invalid_channel"
    expect_contains "$answers" "still-open=ok waiting=9"  # 3 before, the binary publish, batches of 3 and 2
    expect_contains "$answers" "huge-length=frame_too_large closed=True"
    expect_contains "$answers" "bad-header-length=bad_frame closed=True"
    expect_contains "$answers" "garbage=frame_too_large closed=True"
    kill -0 "$pid" || fail "the broker died after malformed requests"
    check_passed
    expect_exit 0 "$send" --socket "$sock" agent.host42.anomalies -m "after the garbage"
    log=$(cat "$state/broker.log")
    expect_contains "$log" "unknown_op" "the broker log"
    expect_contains "$log" "frame_too_large" "the broker log"
    expect_not_contains "$log" "aegis-ed25519-secret" "the broker log"
    expect_not_contains "$log" "$(cut -d' ' -f2 "$TEST_TMP/agent")" "the broker log (secret key)"

fi

# Another user cannot use the socket, even with every mode opened up (SO_PEERCRED).
if part other-user; then
    chmod o+x "$TEST_TMP"
    chmod 777 "$TEST_TMP/run" "$sock"
    answer=$(as_nobody "$python" "$ipc" "$sock" other-user) || fail "the other-user client failed: $answer"
    expect_contains "$answer" "answer=permission_denied closed=True" "another user's hello"
    run as_nobody "$send" --socket "$sock" agent.host42.anomalies -m intruder
    [[ $status == 3 ]] || fail "aegis-send as nobody: exit $status, expected 3"
    check_passed
    expect_contains "$err" "aegis-send: error: " "aegis-send as nobody"
    expect_contains "$(cat "$state/broker.log")" "refused local connection from uid $(id -u nobody)" "the broker log"
    chmod 700 "$TEST_TMP/run" "$TEST_TMP"
    chmod 600 "$sock"
fi

if part main; then
    # --stop: the broker exits and removes its socket.
    expect_exit 0 "$connect" --stop --socket "$sock"
    gone "$pid" || fail "the broker is still running after --stop"
    [[ ! -e $sock ]] || fail "the socket is still there after --stop"
    check_passed
    expect_contains "$(cat "$state/broker.log")" "stop requested" "the broker log"

    # A broker killed with -9 leaves a stale socket: the next one removes it and starts.
    expect_exit 0 "$connect" "$url" "${common[@]}" --no-wait
    pid=$($python "$ipc" "$sock" pid)
    kill -KILL "$pid"
    wait_for "the killed broker to be gone" gone "$pid"
    [[ -S $sock ]] || fail "expected a stale socket file after kill -9"
    check_passed
    expect_exit 0 "$connect" "$url" "${common[@]}" --no-wait
    expect_exit 0 "$send" --socket "$sock" agent.host42.anomalies -m "after a stale socket"
    expect_exit 0 "$connect" --stop --socket "$sock"

    # A full queue refuses a publish (exit 1, nothing dropped); lines that came together are queued
    # or refused as one batch, so a refused batch leaves nothing of itself behind.
    full_sock=$TEST_TMP/run/full.sock
    expect_exit 0 "$connect" "$url" --identity "$TEST_TMP/agent" --backend-key "$TEST_TMP/gateway.pub" \
        --state-dir "$TEST_TMP/full-state" --socket "$full_sock" --no-wait --queue-max-messages 5
    at_exit "$connect" --stop --socket "$full_sock"
    seq 1 3 >"$TEST_TMP/three"  # from a file: read at once, so the lines come together
    seq 4 5 >"$TEST_TMP/two"
    expect_exit 0 "$send" --socket "$full_sock" -l agent.host42.full <"$TEST_TMP/three"
    queued() { $python "$ipc" "$full_sock" status | $python -c 'import json, sys; print(json.load(sys.stdin)["queue"]["waiting"])'; }
    expect_eq "$(queued)" 3 "messages queued after 3 lines"
    expect_error 1 "$send" --socket "$full_sock" -l agent.host42.full <"$TEST_TMP/three"
    expect_contains "$err" "aegis-send: error: queue full"
    expect_contains "$err" "nothing was dropped"
    expect_eq "$(queued)" 3 "messages queued after a refused batch of 3"
    expect_exit 0 "$send" --socket "$full_sock" -l agent.host42.full <"$TEST_TMP/two"
    expect_eq "$(queued)" 5 "messages queued after 2 more lines"
    expect_error 1 "$send" --socket "$full_sock" agent.host42.full -m one-more
    expect_exit 0 "$connect" --stop --socket "$full_sock"

    # Not connected within --timeout: exit 5 naming the last error, and the broker is gone.
    started=$SECONDS
    expect_error 5 "$connect" "$url" "${common[@]}" --timeout 1
    expect_contains "$err" "not connected to $url within 1s"
    ((SECONDS - started < 10)) || fail "--timeout 1 took $((SECONDS - started))s"
    check_passed
    # It exits on its own once it has given up: its socket goes with it.
    no_socket() { [[ ! -e $sock ]]; }
    wait_for "the broker that gave up to remove its socket" 10 no_socket
    check_passed

    # An unsafe socket directory is refused.
    mkdir -m 777 "$TEST_TMP/open-run"
    expect_error 1 "$connect" "$url" "${base[@]}" --socket "$TEST_TMP/open-run/broker.sock" --no-wait
    expect_contains "$err" "writable by group or others"

    # --foreground: no detaching, logs on stderr, SIGTERM stops it with exit 0.
    "$connect" "$url" "${common[@]}" --no-wait --foreground 2>"$TEST_TMP/foreground.log" &
    fg_pid=$!
    at_exit kill -KILL "$fg_pid"
    wait_for "the foreground broker's socket" test -S "$sock"
    check_passed
    [[ $($python "$ipc" "$sock" pid) == "$fg_pid" ]] || fail "the foreground broker is not the process started"
    check_passed
    kill -TERM "$fg_pid"
    wait "$fg_pid"
    fg_status=$?
    [[ $fg_status == 0 ]] || fail "SIGTERM: exit $fg_status, expected 0: $(cat "$TEST_TMP/foreground.log")"
    check_passed
    fg_log=$(cat "$TEST_TMP/foreground.log")
    expect_contains "$fg_log" "received SIGTERM" "the foreground log"
    expect_contains "$fg_log" "listening on $sock" "the foreground log"
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z aegis-connect\[[0-9]+\]: ' "$TEST_TMP/foreground.log" ||
        fail "log lines are not timestamped: $fg_log"
    check_passed
    [[ ! -e $sock ]] || fail "SIGTERM left the socket behind"
    check_passed

fi

summary
