#!/usr/bin/env bash
# Durable delivery, broker side, with real processes and real kill -9 on 127.0.0.1: a gateway,
# an agent broker (host42, the sender) and a backend broker (soc, the receiver).
#  (a) the sending broker is killed mid-stream and restarted: every message it said was queued
#      arrives once;  (b) the gateway is down: messages queue locally and arrive once after it
#      is back;  (c) critical messages overtake low ones queued before them;  (d) a corrupt or
#      foreign queue file, or an unusable state directory, fails at start with one line;
#  (e) a full disk fails the publish cleanly and loses nothing queued before (the part
#      "disk-full": it mounts a small tmpfs, so it needs root, and is skipped elsewhere).
# Each phase prints sent / received / duplicated / lost and requires lost = 0 and dup = 0.
# AEGIS_FAULT_N sets the message count of (a) (default 20000, as in the issue).
# Parts: disk-full

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if part disk-full; then
    require_root "mounting a small tmpfs"
    tiny=$TEST_TMP/tiny
    mkdir -p "$tiny"
    mount_error=$(mount -t tmpfs -o size=1m tmpfs "$tiny" 2>&1) || skip "cannot mount a small tmpfs here: $mount_error"
    at_exit umount -l "$tiny"
fi
N=${AEGIS_FAULT_N:-20000}

# A local-socket client (PROTOCOL.md §8): "status SOCK", "stats SOCK", or
# "publish SOCK CHANNEL PREFIX FIRST COUNT PRIORITY OUT": pipelined publishes of payloads
# PREFIX-i; the index of each publish the broker confirmed is appended to OUT. When the broker
# goes away it reconnects and carries on (a publish with no answer is not counted as queued).
cat >"$TEST_TMP/client.py" <<'PY'
import json, socket, struct, sys, time

def connect(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)

class Conn:
    def __init__(self, path, deadline):
        self.s = connect(path, deadline)
        self.buf = b""
        self.send({"op": "hello", "v": 1, "id": 0})
        self.read()
    def send(self, header, payload=b""):
        text = json.dumps(header).encode()
        self.s.sendall(struct.pack(">II", 4 + len(text) + len(payload), len(text)) + text + payload)
    def read(self):
        while True:
            if len(self.buf) >= 8:
                total, length = struct.unpack(">II", self.buf[:8])
                if len(self.buf) >= 4 + total:
                    header = json.loads(self.buf[8:8 + length])
                    self.buf = self.buf[4 + total:]
                    return header
            data = self.s.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data

cmd, path = sys.argv[1], sys.argv[2]
if cmd in ("status", "stats"):
    c = Conn(path, time.time() + 10)
    c.send({"op": "status" if cmd == "status" else "queue.stats", "id": 1})
    r = c.read()
    print(json.dumps(r["status"] if cmd == "status" else r["stats"], sort_keys=True))
    sys.exit(0)

channel, prefix, first, count, priority, out = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
window = 256
deadline = time.time() + 60
confirmed = open(out, "a", buffering=1)
i = first
end = first + count
refused = 0
nxt = i
while i < end:
    try:
        c = Conn(path, deadline)
        pending = {}
        i = nxt
        while i < end:
            while nxt < end and len(pending) < window:
                c.send({"op": "publish", "id": nxt, "channel": channel, "priority": priority},
                       f"{prefix}-{nxt}".encode())
                pending[nxt] = True
                nxt += 1
            r = c.read()
            rid = r.get("id")
            if rid in pending:
                del pending[rid]
                if r.get("ok"):
                    confirmed.write(f"{rid}\n")
                else:
                    refused += 1
                    print(f"refused {rid}: {r.get('error')}", file=sys.stderr)
            while i < end and i not in pending and i < nxt:
                i += 1
    except (OSError, ConnectionError):
        # The broker died: what was not answered is not counted (nor sent again: it may have
        # been queued); go on with the next index.
        continue
confirmed.close()
sys.exit(1 if refused else 0)
PY

client() { "$python" "$TEST_TMP/client.py" "$@"; }
status_has() { client status "$1" 2>/dev/null | grep -qF -- "$2"; }
# count_phase NAME PREFIX CONFIRMED_FILE: compares the confirmed indexes with what the
# subscriber printed ("channel PREFIX-i" lines) and requires every one exactly once.
count_phase() {
    local name=$1 prefix=$2 confirmed=$3 received dup lost
    indexes "$prefix" | sort -n >"$TEST_TMP/$prefix.received"
    received=$(wc -l <"$TEST_TMP/$prefix.received")
    dup=$(uniq -d "$TEST_TMP/$prefix.received" | wc -l)
    sort -u "$confirmed" >"$TEST_TMP/$prefix.confirmed.sorted"
    lost=$(comm -23 "$TEST_TMP/$prefix.confirmed.sorted" <(sort -u "$TEST_TMP/$prefix.received") | wc -l)
    echo "$name: sent(confirmed)=$(wc -l <"$TEST_TMP/$prefix.confirmed.sorted") received=$received duplicated=$dup lost=$lost"
    [[ $lost == 0 ]] || fail "$name: $lost confirmed message(s) lost"
    [[ $dup == 0 ]] || fail "$name: $dup message(s) delivered twice"
    check_passed
}
# The indexes of the PREFIX-i payloads the subscriber printed (a payload may go on after a space).
indexes() { sed -n "s/^$1-\([0-9]*\)\( .*\)\{0,1\}\$/\1/p" "$TEST_TMP/sub.out"; }
# all_received PREFIX CONFIRMED_FILE: every confirmed index was printed.
all_received() {
    local want have
    want=$(sort -u "$2" | wc -l)
    have=$(indexes "$1" | wc -l)
    ((have >= want))
}

# --- keys, gateway, brokers -----------------------------------------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
glog=$gateway_log
url=$gateway_url

agent=$TEST_TMP/agent
part disk-full && agent=$tiny/state
a_sock=$TEST_TMP/a.sock
timing=(--backoff-min 0.2 --backoff-max 0.5 --timeout 20 --heartbeat 0)
start_agent() { # start_agent: in the foreground, so that its pid is the one to kill -9
    start_broker --foreground --socket "$a_sock" --state-dir "$agent" host42 "${timing[@]}"
    agent_pid=$broker_pid
}
start_agent
start_broker soc "${timing[@]}"
b_sock=$broker_sock

# The backend broker's session at the gateway, resumed after a restart, with its subscriptions:
# what is published from then on reaches the subscriber.
backend_sessions() { grep -c "authenticated id=soc " "$glog"; }
backend_resumed_since() { (($(backend_sessions) > $1)); }
# restart_for_backend: restarts the gateway and waits until the backend broker is back on it.
restart_for_backend() {
    local before
    before=$(backend_sessions)
    restart_gateway
    wait_for "the backend broker to resume its session" backend_resumed_since "$before"
}

# One subscriber on the receiving broker for the whole test.
"$sub" --socket "$b_sock" 'agent.host42.>' >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
at_exit kill "$sub_pid"
wait_for "the subscription" 20 subscribed "$b_sock" 'agent.host42.>'

if part main; then

# --- (a) the sending broker killed with -9 mid-stream --------------------------------------------

: >"$TEST_TMP/a.confirmed"
client publish "$a_sock" agent.host42.tests a 0 "$N" normal "$TEST_TMP/a.confirmed" 2>"$TEST_TMP/a.err" &
sender=$!
# Kill once a good part is queued, while the rest is still being published or sent.
confirmed_at_least() { (($(wc -l <"$1") >= $2)); }
wait_for "the first messages to be queued" 60 confirmed_at_least "$TEST_TMP/a.confirmed" $((N / 3))
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
killed_at=$(wc -l <"$TEST_TMP/a.confirmed")
start_agent
wait "$sender" || fail "the publishing client failed: $(tail -3 "$TEST_TMP/a.err")"
((killed_at < N)) || fail "the broker was killed after every message was queued; the test proved nothing"
check_passed
wait_for "every confirmed message at the subscriber" 60 all_received a "$TEST_TMP/a.confirmed"
sleep "$LATE_COPY_WINDOW" # a copy sent again would be here by now
echo "(a) broker killed after $killed_at confirmed publishes"
count_phase "(a) sender kill -9" a "$TEST_TMP/a.confirmed"

# --- (b) the gateway down: messages queue locally -----------------------------------------------

M=200
kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
wait_for "the agent broker to notice" 20 status_has "$a_sock" '"state": "backing_off"'
: >"$TEST_TMP/b.confirmed"
client publish "$a_sock" agent.host42.tests b 0 "$M" normal "$TEST_TMP/b.confirmed" || fail "publishing (b) failed"
expect_eq "$(wc -l <"$TEST_TMP/b.confirmed")" "$M" "publishes confirmed while the gateway is down"
stats=$(client stats "$a_sock")
expect_contains "$stats" "\"waiting\": $M" "queue.stats while the gateway is down"
expect_match "$(client status "$a_sock")" "\"queue\": \\{[^}]*\"waiting\": $M" "status.queue"
# The receiver must be subscribed again before the sender sends: hold the sender meanwhile.
kill -STOP "$agent_pid"
restart_for_backend
kill -CONT "$agent_pid"
wait_for "the queue of (b) at the subscriber" 30 all_received b "$TEST_TMP/b.confirmed"
sleep "$LATE_COPY_WINDOW"
count_phase "(b) gateway down" b "$TEST_TMP/b.confirmed"
wait_for "the queue to empty" 20 status_has "$a_sock" '"waiting": 0'

# --- (c) priority: critical ones queued last arrive first ------------------------------------------

kill -KILL "$gateway_pid"
wait "$gateway_pid" 2>/dev/null
wait_for "the agent broker to notice" 20 status_has "$a_sock" '"state": "backing_off"'
: >"$TEST_TMP/cl.confirmed"
: >"$TEST_TMP/cc.confirmed"
client publish "$a_sock" agent.host42.tests low 0 100 low "$TEST_TMP/cl.confirmed" || fail "publishing low failed"
client publish "$a_sock" agent.host42.tests crit 0 20 critical "$TEST_TMP/cc.confirmed" || fail "publishing critical failed"
kill -STOP "$agent_pid"
restart_for_backend
kill -CONT "$agent_pid"
wait_for "the low ones at the subscriber" 30 all_received low "$TEST_TMP/cl.confirmed"
sleep "$LATE_COPY_WINDOW"
count_phase "(c) priority low" low "$TEST_TMP/cl.confirmed"
count_phase "(c) priority critical" crit "$TEST_TMP/cc.confirmed"
last_critical=$(grep -n "^crit-[0-9]*\$" "$TEST_TMP/sub.out" | tail -1 | cut -d: -f1)
first_low=$(grep -n "^low-[0-9]*\$" "$TEST_TMP/sub.out" | head -1 | cut -d: -f1)
((last_critical < first_low)) || fail "(c) a low message (line $first_low) arrived before a critical one (line $last_critical)"
echo "(c) every critical message arrived before the first low one"
check_passed

# --- (f) a durable subscription stores while no client is attached -----------------------------------

cat >"$TEST_TMP/durable.py" <<'PY'
import json, socket, struct, sys, time
class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); self.s.settimeout(15); self.s.connect(path); self.buf=b""
        self.send({"op":"hello","v":1,"id":0}); self.read()
    def send(self, h, p=b""):
        t=json.dumps(h).encode(); self.s.sendall(struct.pack(">II",4+len(t)+len(p),len(t))+t+p)
    def read(self):
        while True:
            if len(self.buf)>=8:
                total,length=struct.unpack(">II",self.buf[:8])
                if len(self.buf)>=4+total:
                    h=json.loads(self.buf[8:8+length]); p=self.buf[8+length:4+total]; self.buf=self.buf[4+total:]; return h,p
            d=self.s.recv(65536)
            if not d: raise ConnectionError("closed")
            self.buf+=d
cmd, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
c = Conn(path)
if cmd == "attach":   # attach, print backlog count, read until caught_up, print payloads, ack if asked
    c.send({"op":"subscribe","id":1,"patterns":[sys.argv[4]],"durable":name})
    h,_ = c.read()
    if not h.get("ok"): print("ERR", h); sys.exit(1)
    print("backlog", h["backlog"])
    last = 0
    while True:
        h,p = c.read()
        if h.get("event") == "caught_up": break
        print("msg", p.decode(), h.get("cursor_seq")); last = h["cursor_seq"]
    if len(sys.argv) > 5 and sys.argv[5] == "ack" and last:
        c.send({"op":"ack","id":2,"durable":name,"cursor_seq":last}); print("ack", c.read()[0].get("ok"))
elif cmd == "delete":
    c.send({"op":"cursor.delete","id":1,"durable":name}); print(c.read()[0])
PY
durable() { "$python" "$TEST_TMP/durable.py" "$@"; }
run durable attach "$b_sock" night agent.host42.durable
expect_eq "$status" 0 "attaching a new durable subscription"
expect_eq "$out" "backlog 0" "a new durable subscription"
: >"$TEST_TMP/d.confirmed"
client publish "$a_sock" agent.host42.durable d 0 5 normal "$TEST_TMP/d.confirmed" || fail "publishing (f) failed"
wait_for "the durable messages at the live subscriber" 20 all_received d "$TEST_TMP/d.confirmed"
night_holds_5() { "$queue" cursors --json --socket "$b_sock" | "$python" -c 'import json,sys
sys.exit(sum(c["pending"] for c in json.load(sys.stdin) if c["name"] == "night") != 5)'; }
wait_for "the durable messages to be stored for the detached cursor" night_holds_5
run durable attach "$b_sock" night agent.host42.durable ack
expect_eq "$status" 0 "attaching again"
expect_contains "$out" "backlog 5" "the stored backlog"
expect_eq "$(grep -c '^msg d-' <<<"$out")" 5 "the backlog's messages"
expect_contains "$out" "ack True" "the ack"
run durable attach "$b_sock" night agent.host42.durable
expect_eq "$out" "backlog 0" "after the ack"
run durable delete "$b_sock" night
expect_contains "$out" "'deleted': True" "cursor.delete"
echo "(f) durable subscription: 5 stored while detached, replayed once, acked, nothing after the ack"


# --- (d) a corrupt or foreign queue file, an unusable state directory ------------------------------

kill -KILL "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
bad=$TEST_TMP/bad
start_bad=("$connect" "$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub"
    --socket "$TEST_TMP/bad.sock" --state-dir "$bad" "${timing[@]}")
mkdir -m 700 "$bad"
head -c 65536 /dev/urandom >"$bad/queue.db"
chmod 600 "$bad/queue.db"
expect_error 6 "${start_bad[@]}"
expect_contains "$err" "queue.db" "the error for a garbage queue file"
expect_no_crash
rm -f "$bad"/queue.db*
"$python" -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' "$bad/queue.db"
chmod 600 "$bad/queue.db"
expect_error 6 "${start_bad[@]}"
expect_contains "$err" "another program" "the error for a foreign SQLite file"
expect_eq "$("$python" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select name from sqlite_master").fetchall())' "$bad/queue.db")" "[('t',)]" "the foreign file after the refusal"
# A garbage file after a good run (overwritten while the broker is stopped).
good=$TEST_TMP/agent/queue.db
if [[ -f $good ]]; then
    rm -f "$bad"/queue.db*
    cp "$good" "$bad/queue.db"
    dd if=/dev/urandom of="$bad/queue.db" bs=1024 count=8 conv=notrunc 2>/dev/null
    expect_error 6 "${start_bad[@]}"
fi
# A state directory that cannot be made.
echo x >"$TEST_TMP/plainfile"
expect_error 1 "$connect" "$url" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/bad.sock" --state-dir "$TEST_TMP/plainfile/state"
expect_contains "$err" "plainfile/state"
# A state directory it cannot write. Root writes anyway: as root, the broker runs as nobody,
# with a copy of the key it can read and the directory made nobody's.
ro=$TEST_TMP/ro
mkdir -p "$ro/state"
cp "$TEST_TMP/host42" "$TEST_TMP/gateway.pub" "$ro/"
ro_start=("$connect" "$url" --identity "$ro/host42" --backend-key "$ro/gateway.pub" --socket "$ro/bad.sock"
    --state-dir "$ro/state")
chmod 500 "$ro/state"
if [[ $(id -u) == 0 ]]; then
    chmod o+x "$TEST_TMP"
    chown -R nobody "$ro"
    expect_exit 1 as_nobody "${ro_start[@]}"
    chmod o-x "$TEST_TMP"
else
    expect_exit 1 "${ro_start[@]}"
fi
expect_lines 1 "$err" "the error for a read-only state directory"
expect_match "$err" "^aegis-connect: error: .*$ro/state is not writable" "the error for a read-only state directory"
chmod 700 "$ro/state"

fi

# --- (e) a full disk (the part disk-full: the agent's state is on the 1 MiB tmpfs) ----------------

if part disk-full; then
    kill_gateway
    wait_for "the agent broker to notice" 20 status_has "$a_sock" '"state": "backing_off"'
    head -c 2000 /dev/urandom | base64 -w0 >"$TEST_TMP/blob"
    dd if=/dev/zero of="$tiny/filler" bs=1k count=600 2>/dev/null
    : >"$TEST_TMP/e.confirmed"
    disk_full=
    for ((i = 0; i < 400; i++)); do
        run "$send" --socket "$a_sock" agent.host42.tests -m "e-$i $(cat "$TEST_TMP/blob")"
        if [[ $status != 0 ]]; then
            disk_full=$i
            break
        fi
        echo "$i" >>"$TEST_TMP/e.confirmed"
    done
    [[ -n $disk_full ]] || fail "(e) 400 messages fitted in a 1 MiB file system"
    expect_eq "$status" 1 "the exit status of a publish on a full disk"
    expect_contains "$err" "disk full" "the publish error on a full disk"
    expect_no_crash
    status_has "$a_sock" '"state"' || fail "(e) the broker died on a full disk"
    check_passed
    # Space comes back (the state file stays), and everything queued before is delivered.
    rm -f "$tiny"/filler
    kill -STOP "$agent_pid"
    restart_for_backend
    kill -CONT "$agent_pid"
    wait_for "the queue of (e) at the subscriber" 30 all_received e "$TEST_TMP/e.confirmed"
    sleep "$LATE_COPY_WINDOW"
    count_phase "(e) disk full (failed at publish $disk_full)" e "$TEST_TMP/e.confirmed"
fi

summary
