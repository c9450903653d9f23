#!/usr/bin/env bash
# Type=notify: under systemd ($NOTIFY_SOCKET) the gateway says READY=1 once its port accepts
# connections, and the broker (aegis-connect --foreground --no-wait, as its units run it) once
# its local socket serves, even while the gateway is unreachable: messages queue meanwhile. Both
# send STATUS= lines: the gateway its session count, the broker its session's state (backing
# off, connected). A listener stands in for systemd: it reads the datagrams and, the moment
# READY=1 arrives, checks that the daemon really serves.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$gateway" "$connect" "$send" "$stat" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done
command -v python3 >/dev/null || fail "python3 is required (scripts/deps.sh installs it)"


# listen_notify NAME KIND TARGET: a datagram socket $TEST_TMP/NAME.notify; every field received
# is one line of $TEST_TMP/NAME.fields, and READY=1 is followed by "CHECK serving" or
# "CHECK not-serving" (KIND tcp: TARGET is a port on 127.0.0.1; unix: a socket path).
listen_notify() {
    python3 - "$TEST_TMP/$1.notify" "$TEST_TMP/$1.fields" "$2" "$3" <<'PY' &
import socket, sys
path, out, kind, target = sys.argv[1:5]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(path)
def serving():
    try:
        if kind == "tcp":
            probe = socket.create_connection(("127.0.0.1", int(target)), timeout=2)
        else:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(2)
            probe.connect(target)
        probe.close()
        return True
    except OSError:
        return False
with open(out, "a", buffering=1) as fields:
    while True:
        datagram = listener.recv(65536).decode()
        for field in datagram.splitlines():
            fields.write(field + "\n")
            if field == "READY=1":
                fields.write("CHECK " + ("serving" if serving() else "not-serving") + "\n")
PY
    at_exit kill $!
    wait_for "the notify listener" 10 test -S "$TEST_TMP/$1.notify"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for who in gateway host42; do
    "$keygen" -q -f "$TEST_TMP/$who" -C "$who" || fail "aegis-keygen failed"
done
echo "role=agent,id=host42 $(cat "$TEST_TMP/host42.pub")" >"$TEST_TMP/authorized"
port=$(free_port)
[[ -n $port ]] || fail "no free port"
url="ws://127.0.0.1:$port/"

# --- the broker: ready once its socket serves, with the gateway not there yet ----------------------------

sock=$TEST_TMP/run/broker.sock
listen_notify broker unix "$sock"
NOTIFY_SOCKET=$TEST_TMP/broker.notify "$connect" "$url" --foreground --no-wait --identity "$TEST_TMP/host42" \
    --backend-key "$TEST_TMP/gateway.pub" --socket "$sock" --state-dir "$TEST_TMP/state" \
    --backoff-min 0.1 --backoff-max 0.3 --heartbeat 0 2>>"$TEST_TMP/broker.log" &
broker_pid=$!
at_exit kill -KILL "$broker_pid"
wait_for "READY=1 from the broker" 20 grep -qx "READY=1" "$TEST_TMP/broker.fields"
wait_for "the broker's check" 10 grep -q "^CHECK" "$TEST_TMP/broker.fields"
expect_eq "$(grep "^CHECK" "$TEST_TMP/broker.fields")" "CHECK serving" "the broker's socket when READY=1 came"
wait_for "a backing-off STATUS= line" 20 grep -q "^STATUS=session backing_off" "$TEST_TMP/broker.fields"
check_passed
# Queued while the gateway is away.
expect_exit 0 "$send" --socket "$sock" agent.host42.status -m "queued before the gateway"
expect_exit 0 "$stat" --socket "$sock" --json
expect_match "$out" '"state": *"(backing_off|connecting)"' "the broker's state"

# --- the gateway: ready once its port accepts connections ---------------------------------------------

listen_notify gateway tcp "$port"
NOTIFY_SOCKET=$TEST_TMP/gateway.notify "$gateway" --listen "127.0.0.1:$port" --identity "$TEST_TMP/gateway" \
    --authorized "$TEST_TMP/authorized" --state-dir "$TEST_TMP/gw-state" 2>>"$TEST_TMP/gateway.log" &
gateway_pid=$!
at_exit kill -KILL "$gateway_pid"
wait_for "READY=1 from the gateway" 20 grep -qx "READY=1" "$TEST_TMP/gateway.fields"
wait_for "the gateway's check" 10 grep -q "^CHECK" "$TEST_TMP/gateway.fields"
expect_eq "$(grep "^CHECK" "$TEST_TMP/gateway.fields")" "CHECK serving" "the gateway's port when READY=1 came"
expect_match "$(cat "$TEST_TMP/gateway.fields")" "STATUS=serving on port $port: 0 sessions" "the gateway's status"

# The broker reaches it, says so, and the gateway counts the session (refreshed every 5 s).
wait_for "a connected STATUS= line" 20 grep -q "^STATUS=connected to $url as host42" "$TEST_TMP/broker.fields"
check_passed
wait_for "the gateway's session count" 15 grep -q "^STATUS=serving on port $port: 1 sessions" \
    "$TEST_TMP/gateway.fields"
check_passed
expect_exit 0 "$stat" --socket "$sock" --check

# --- stopping: STOPPING=1, and both exit 0 ----------------------------------------------------------------

kill -TERM "$broker_pid"
wait "$broker_pid"
expect_eq "$?" 0 "the broker's exit status after SIGTERM"
wait_for "STOPPING=1 from the broker" 10 grep -qx "STOPPING=1" "$TEST_TMP/broker.fields"
check_passed
kill -TERM "$gateway_pid"
wait "$gateway_pid"
expect_eq "$?" 0 "the gateway's exit status after SIGTERM"
wait_for "STOPPING=1 from the gateway" 10 grep -qx "STOPPING=1" "$TEST_TMP/gateway.fields"
check_passed

# --- without NOTIFY_SOCKET nothing changes: the gateway starts as before --------------------------------

"$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
    --state-dir "$TEST_TMP/gw-state" 2>>"$TEST_TMP/plain-gateway.log" &
plain=$!
at_exit kill -KILL "$plain"
wait_for "the gateway without NOTIFY_SOCKET" 20 grep -q "listening on 127.0.0.1:" "$TEST_TMP/plain-gateway.log"
check_passed

summary
