#!/usr/bin/env bash
# Compares Aegis with mosquitto side by side on loopback: pipeline throughput (lines streamed from
# one sender to one subscriber), one-shot send latency (a fresh process per message), request/reply
# round trips, and how many sessions one gateway holds. Starts gateways, brokers and a mosquitto
# of its own; everything is stopped on exit. Every target is printed with whether it is met.
# Usage: scripts/bench.sh [--quick] [-n|--messages N] [-s|--size BYTES] [-r|--runs R]
#                         [-m|--oneshots M] [--limit SECS] [--requests N] [--sessions K] [--big]
#                         [--heartbeat SECS] [--only CASES] [--backlog N] [--json FILE] [--bin TOOLS_DIR]
#                         [--work DIR]
# Without --bin, builds first (scripts/build.sh); the drivers are taken from TOOLS_DIR/../tests/bench.
# --work: where the gateways, brokers and mosquitto keep their state (default: TOOLS_DIR/.., the
#   build directory), on a disk as a user's would be: refused on a tmpfs.
# --quick: 20000 messages, one run, 50 one-shots, 100 requests, 500 sessions.
# --limit: stop a pipeline run after SECS (default 60 + 1ms per message); a cut run counts what arrived.
# --requests: timed request/reply round trips (default 2000, so that the p99 is not decided by
#   five samples; a tenth of them as fresh processes).
# --sessions: gateway sessions for the scale case (default 2000; --big: 10000); --heartbeat: each
#   session's heartbeat interval during the scale case (default 5 s, for 2 intervals).
# --only: a comma-separated subset of pipeline,oneshot,rr,scale,backlog,cluster (default: all of them but
#   cluster, which needs redis-server; it streams through two gateways sharing a Redis against one
#   SQLite gateway).
# --backlog N: messages the backlog case queues with the gateway down (default 1000000).
# Pipeline: each run sends fresh payloads tagged with the run on a channel of its own, subscribed
# exactly; a run counts the distinct payloads received that are in its input, and the rate of a
# case is the median of its runs' rates. CPU per message: user+system time of every process on
# each side, from /proc/PID/stat for the daemons (over the run) and from getrusage for the
# clients (bash's `times` in a wrapper, like /usr/bin/time), divided by the messages sent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

messages=200000
size=100
runs=3
oneshots=200
json_file=""
bin=""
run_limit=""
requests=2000
sessions=2000
heartbeat=5
only="pipeline,oneshot,rr,scale,backlog"  # backlog: ~80 s for 1,000,000 messages
backlog_messages=1000000
work_parent=""
usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) messages=20000 runs=1 oneshots=50 requests=100 sessions=500 ;;
    -n | --messages) messages=$2; shift ;;
    -s | --size) size=$2; shift ;;
    -r | --runs) runs=$2; shift ;;
    -m | --oneshots) oneshots=$2; shift ;;
    --json) json_file=$2; shift ;;
    --bin) bin=$2; shift ;;
    --work) work_parent=$2; shift ;;
    --limit) run_limit=$2; shift ;;
    --requests) requests=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --big) sessions=10000 ;;
    --heartbeat) heartbeat=$2; shift ;;
    --only) only=$2; shift ;;
    --backlog) backlog_messages=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
usage_error() { echo "bench: error: $*" >&2; exit 2; }
((size >= 12)) || usage_error "--size must be at least 12 bytes"
for number in "$messages" "$runs" "$oneshots" "$requests" "$sessions" "$heartbeat" "$backlog_messages"; do
  [[ $number =~ ^[1-9][0-9]*$ ]] || usage_error "counts, sizes and --heartbeat must be positive integers, not '$number'"
done
IFS=, read -r -a cases <<<"$only"
for case in "${cases[@]}"; do
  [[ $case =~ ^(pipeline|oneshot|rr|scale|backlog|cluster)$ ]] ||
    usage_error "--only takes pipeline,oneshot,rr,scale,backlog,cluster, not '$case'"
done
wants() { [[ ,$only, == *,$1,* ]]; }
command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null && command -v mosquitto_rr >/dev/null ||
  { echo "bench: error: mosquitto and mosquitto-clients are needed (scripts/deps.sh)" >&2; exit 1; }

[[ -n $bin ]] || bin=$("$root/scripts/build.sh" | tail -n 1)/tools
drivers=$bin/../tests/bench
for tool in aegis-gateway aegis-connect aegis-send aegis-sub aegis-stat aegis-keygen; do
  [[ -x $bin/$tool ]] || { echo "bench: error: $bin/$tool is missing" >&2; exit 1; }
done
for tool in aegis_loadgen aegis_rr; do
  [[ -x $drivers/$tool ]] || { echo "bench: error: $drivers/$tool is missing (build the tests)" >&2; exit 1; }
done
# Generous bound for one pipeline run: a minute plus a millisecond per message.
[[ -n $run_limit ]] || run_limit=$((60 + messages / 1000))

# The process tests' harness sets up the identities, the gateway and the brokers (tests/cli/lib.sh).
# Its functions are written for a shell without `set -e` (a grep -c that counts 0 is not a
# failure there): each is called as `f || die`, which runs its body without -e. Its exit trap
# stops the brokers, kills this script's background jobs and removes the directory ($TEST_TMP).
[[ -n $work_parent ]] || work_parent=$bin/..
[[ -d $work_parent ]] || usage_error "--work $work_parent is not a directory"
[[ $(stat -f -c %T "$work_parent") != tmpfs ]] ||
  usage_error "$work_parent is a tmpfs: give --work a directory on a disk, as a user's state would be"
export AEGIS_BIN=$bin
TMPDIR=$(cd "$work_parent" && pwd)
export TMPDIR
source "$root/tests/cli/lib.sh"
# Its exit actions, without -e: a kill of a job that has already ended must not end them early.
trap 'set +e; _run_exit_actions' EXIT
trap 'exit 130' INT TERM
work=$TEST_TMP

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: error: $*"; exit 1; }
now() { echo "${EPOCHREALTIME/./}"; }  # microseconds
elapsed() { printf '%d.%06d' $((($2 - $1) / 1000000)) $((($2 - $1) % 1000000)); }  # seconds
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
results="$work/results.tsv"  # case <tab> system <tab> run <tab> seconds <tab> count
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }
cpu_results="$work/cpu.tsv"  # case <tab> run <tab> process <tab> CPU seconds
record_cpu() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$cpu_results"; }

# CPU time. Daemons: user+system clock ticks of all their threads so far (/proc/PID/stat fields
# 14 and 15), read before and after a run. Clients: run under "${measured[@]}", which appends
# what they used.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() {  # cpu_ticks PID
  local stat fields
  stat=$(<"/proc/$1/stat") || { echo 0; return; }
  read -r -a fields <<<"${stat##*) }"  # after the command name, which may hold spaces: field 3 on
  echo $((fields[11] + fields[12]))
}
ticks_seconds() { awk -v t="$1" -v hz="$clock_ticks" 'BEGIN { printf "%.3f", t / hz }'; }
# "${measured[@]}" CPUFILE CMD...: runs CMD and appends the user and system time it used (it and the
# children it waited for: getrusage, as /usr/bin/time) to CPUFILE as bash's `times` prints it:
# a line for the wrapper shell, then one for CMD (`times` in a pipe or $(...) would count a
# subshell's children, none). A TERM is passed on to CMD, so a watchdog can stop a measured
# subscriber and still get its time. A command, not a function: started with & it is the
# process $! names (a function would run in a subshell of its own, which the TERM would kill).
measured=(bash -c 'trap "kill -TERM \$child 2>/dev/null" TERM
"${@:2}" <&0 &
child=$!
wait "$child"
status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
times >>"$1"
exit "$status"' measured)
measured_seconds() {  # measured_seconds CPUFILE: the sum of its commands' lines ("0m1.234s 0m0.056s")
  awk 'NR % 2 == 0 { for (i = 1; i <= 2; i++) { split($i, part, /[ms]/); total += part[1] * 60 + part[2] } }
       END { printf "%.3f", total }' "$1"
}

needs_brokers=false
if wants pipeline || wants oneshot || wants rr || wants backlog; then needs_brokers=true; fi

if wants pipeline || wants cluster; then
  say "== input: $messages lines of $size bytes a run, tagged with the run"
  python3 - "$messages" "$size" "$runs" "$work/input" <<'PY'
import sys
n, size, runs, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for run in range(1, runs + 1):
    tag = f"r{run}-"
    width = max(size - 1 - len(tag), len(str(n - 1)))  # size bytes on the wire with the newline
    with open(f"{path}.{run}", "w") as out:
        for i in range(n):
            out.write(f"{tag}{i:0{width}d}\n")
PY
  for ((run = 1; run <= runs; run++)); do
    split -l 20000 -a 4 "$work/input.$run" "$work/input.$run.part."  # for mosquitto_pub -q 1
  done
fi

if $needs_brokers; then
  say "== aegis: gateway and brokers"
  # The identities are named by their ids (the agent host42, the backend ops), as the harness
  # names them; the brokers' sockets and logs by their side.
  { make_identities gateway host42 ops && authorize agent host42 && authorize backend ops; } ||
    die "cannot make the identities"
  start_gateway || die "the gateway did not start"
  start_broker --socket "$work/agent.sock" host42 --log "$work/agent.log" || die "the agent broker did not start"
  start_broker --socket "$work/backend.sock" ops --log "$work/backend.log" || die "the backend broker did not start"
  agent_pid=$(status_field "$work/agent.sock" pid) && backend_pid=$(status_field "$work/backend.sock" pid) ||
    die "the brokers do not say their process ids"

  say "== mosquitto"
  mq_port=$(free_port)
  cat >"$work/mosquitto.conf" <<CONF
listener $mq_port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_inflight_messages 0
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type subscribe
CONF
  mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
  mq_pid=$!
  wait_for mosquitto 10 timeout 2 mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t ping -m x || die "mosquitto did not start"
fi

subscribed_mosquitto() { [[ $(grep -c " $1\$" "$work/mosquitto.log") -ge $2 ]]; }
# finish SUB_PID OUT: waits for the subscriber and sets run_end to when it finished (microseconds).
# Called directly, never inside $(...): only this shell can wait for its child, so the end is when
# the subscriber exits, not the watchdog's next poll. If its output stops growing for 2s (lost
# messages) or the run bound passes, the watchdog stops it and the time of its last growth counts.
run_end=0
finish() {
  local pid=$1 out=$2 watchdog
  rm -f "$out.stalled"
  (
    last_size=-1 last_change=$(now) deadline=$((SECONDS + run_limit))
    while kill -0 "$pid" 2>/dev/null; do
      size=$(stat -c %s "$out")
      if ((size != last_size)); then
        last_size=$size last_change=$(now)
      elif (($(now) - last_change > 2000000 || SECONDS >= deadline)); then
        echo "$last_change" >"$out.stalled"
        kill "$pid" 2>/dev/null
        exit 0
      fi
      sleep 0.2
    done
  ) &
  watchdog=$!
  wait "$pid" 2>/dev/null || true
  run_end=${EPOCHREALTIME/./}
  wait "$watchdog" 2>/dev/null || true
  if [[ -s $out.stalled ]]; then run_end=$(<"$out.stalled"); fi
  rm -f "$out.stalled"
}
received() {  # received OUT INPUT: distinct lines of OUT that are lines of INPUT
  python3 - "$1" "$2" <<'PY'
import sys
got = set(open(sys.argv[1], "rb").read().split(b"\n"))
print(len(got & set(open(sys.argv[2], "rb").read().split(b"\n")) - {b""}))
PY
}
queue_empty() {  # the broker holds no message waiting or in flight
  [[ $(status_field "$1" queue.waiting) == 0 && $(status_field "$1" queue.in_flight) == 0 ]]
}

pipeline_aegis() {  # pipeline_aegis RUN
  local run=$1 out="$work/aegis.out.$1" input="$work/input.$1" channel="agent.host42.bench.r$1" sub start i
  local -A before
  : >"$out"
  for i in agent:$agent_pid gateway:$gateway_pid backend:$backend_pid; do before[${i%%:*}]=$(cpu_ticks "${i#*:}"); done
  "${measured[@]}" "$out.cpu" timeout "$run_limit" "$bin/aegis-sub" --socket "$work/backend.sock" "$channel" \
    -C "$messages" >"$out" &
  sub=$!
  wait_for "the bench subscription" 5 subscribed "$work/backend.sock" "$channel" || die "aegis-sub did not subscribe"
  start=${EPOCHREALTIME/./}
  "${measured[@]}" "$work/send.cpu.$run" timeout "$run_limit" "$bin/aegis-send" --socket "$work/agent.sock" -l "$channel" \
    <"$input" || say "bench: aegis-send failed"
  finish "$sub" "$out"
  record pipeline aegis "$run" "$(elapsed "$start" "$run_end")" "$(received "$out" "$input")"
  # What the agent's broker still does for these messages (their acknowledgements, a cut run's
  # rest) is theirs: its CPU is read once its queue is empty (or after 30 s).
  for ((i = 0; i < 300; i++)); do queue_empty "$work/agent.sock" && break; sleep 0.1; done
  record_cpu pipeline "$run" aegis-send "$(measured_seconds "$work/send.cpu.$run")"
  record_cpu pipeline "$run" agent-broker "$(ticks_seconds $(($(cpu_ticks "$agent_pid") - before[agent])))"
  record_cpu pipeline "$run" aegis-gateway "$(ticks_seconds $(($(cpu_ticks "$gateway_pid") - before[gateway])))"
  record_cpu pipeline "$run" backend-broker "$(ticks_seconds $(($(cpu_ticks "$backend_pid") - before[backend])))"
  record_cpu pipeline "$run" aegis-sub "$(measured_seconds "$out.cpu")"
}

pipeline_mosquitto() {  # pipeline_mosquitto QOS RUN
  local qos=$1 run=$2 out="$work/mosquitto.out.$1.$2" input="$work/input.$2" topic="bench/q$1r$2" sub start part
  local mosquitto_before
  : >"$out"
  mosquitto_before=$(cpu_ticks "$mq_pid")
  "${measured[@]}" "$out.cpu" timeout "$run_limit" mosquitto_sub -h 127.0.0.1 -p "$mq_port" -t "$topic" -q "$qos" \
    -C "$messages" >"$out" &
  sub=$!
  wait_for "the mosquitto subscription" 5 subscribed_mosquitto "$topic" 1 || die "mosquitto_sub did not subscribe"
  start=${EPOCHREALTIME/./}
  if [[ $qos == 0 ]]; then
    "${measured[@]}" "$out.pub.cpu" timeout "$run_limit" mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t "$topic" -q 0 -l \
      <"$input" || say "bench: mosquitto_pub failed"
  else
    # At its best: up to 1000 messages in flight (-M; the default is 20) and no Nagle delay.
    # mosquitto_pub 2.0.11 -q 1 -l exits at the end of its input without sending what it still
    # holds (of 200,000 lines it delivered 3,398 from a file and 68,933 from a pipe, and with
    # -M 1000 68,932 from a file), all of 20,000: so it is given the lines in parts of 20,000, one
    # connection each (a connection costs a few milliseconds, counted in mosquitto's time).
    for part in "$input".part.*; do
      "${measured[@]}" "$out.pub.cpu" timeout "$run_limit" mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t "$topic" -q 1 \
        -M 1000 --nodelay -l <"$part" || { say "bench: mosquitto_pub failed"; break; }
    done
  fi
  finish "$sub" "$out"
  record "pipeline-qos$qos" mosquitto "$run" "$(elapsed "$start" "$run_end")" "$(received "$out" "$input")"
  record_cpu "pipeline-qos$qos" "$run" mosquitto_pub "$(measured_seconds "$out.pub.cpu")"
  record_cpu "pipeline-qos$qos" "$run" mosquitto "$(ticks_seconds $(($(cpu_ticks "$mq_pid") - mosquitto_before)))"
  record_cpu "pipeline-qos$qos" "$run" mosquitto_sub "$(measured_seconds "$out.cpu")"
}

# The one-shot loops run each tool directly, as cron does: a wrapper process per call (timeout)
# would add a millisecond to both sides. One watchdog per loop stops a hung call instead.
# start_watchdog SECONDS NAME...: after SECONDS, stops this shell's children with those names.
watchdog=""
start_watchdog() {
  local seconds=$1
  shift
  (
    sleep "$seconds" &
    wait $!
    for name; do pkill -P $$ -x "$name"; done
  ) >/dev/null 2>&1 &
  watchdog=$!
}
stop_watchdog() {
  pkill -P "$watchdog" 2>/dev/null || true
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
}

oneshot() {  # oneshot SYSTEM RUN
  local start end i
  start_watchdog $((30 + oneshots / 10)) aegis-send mosquitto_pub
  start=$(now)
  for ((i = 0; i < oneshots; i++)); do
    if [[ $1 == aegis ]]; then
      "$bin/aegis-send" --socket "$work/agent.sock" --timeout 10 --wait-ack agent.host42.oneshot -m x >/dev/null
    else
      mosquitto_pub -h 127.0.0.1 -p "$mq_port" -q 1 -t oneshot -m x
    fi || { stop_watchdog; die "$1 one-shot send failed"; }
  done
  end=$(now)
  stop_watchdog
  record oneshot "$1" "$2" "$(elapsed "$start" "$end")" "$oneshots"
}

# Request/reply: a replier on the backend answers requests from the agent, through the gateway.
# Timed twice: from one long-lived connection (the round trip itself) and with a fresh process
# per request (aegis-send --request against mosquitto_rr, both answered by a long-lived replier).
rr_oneshots=$(((requests + 9) / 10))
request_reply() {
  say "== request/reply: $requests round trips, $rr_oneshots one-shot"
  "$drivers/aegis_rr" reply --socket "$work/backend.sock" agent.host42.rr >"$work/rr-replier.out" 2>&1 &
  wait_for "the replier's subscription" 30 grep -q "^subscribed" "$work/rr-replier.out" ||
    { cat "$work/rr-replier.out" >&2; die "the replier did not subscribe"; }
  timeout $((60 + requests / 10)) "$drivers/aegis_rr" request --socket "$work/agent.sock" --channel agent.host42.rr \
    --count "$requests" >"$work/rr.json" || say "bench: aegis_rr request failed"

  local fifo="$work/rr.fifo" i start end
  mkfifo "$fifo"
  mosquitto_sub -h 127.0.0.1 -p "$mq_port" -t rr/request >"$fifo" &
  mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t rr/response -l <"$fifo" &
  wait_for "the mosquitto replier" 10 subscribed_mosquitto rr/request 1 || die "the mosquitto replier did not subscribe"
  start_watchdog $((30 + rr_oneshots)) aegis-send mosquitto_rr
  for ((i = 0; i < rr_oneshots; i++)); do
    timed_request aegis "$i" "$bin/aegis-send" --socket "$work/agent.sock" --timeout 5 --request agent.host42.rr -m x
    timed_request mosquitto "$i" mosquitto_rr -h 127.0.0.1 -p "$mq_port" -t rr/request -e rr/response -m x -W 5
  done
  stop_watchdog
  # A session drop in the middle costs a backoff and shows in the figures: say so.
  cat "$work/agent.log" "$work/backend.log" | grep -c "session backing_off" >"$work/rr.drops" || true
}
timed_request() {  # timed_request SYSTEM I COMMAND...: one row, count 0 when no reply came
  local system=$1 i=$2 start end
  shift 2
  start=$(now)
  if "$@" >/dev/null; then
    end=$(now)
    record rr-oneshot "$system" "$i" "$(elapsed "$start" "$end")" 1
  else
    record rr-oneshot "$system" "$i" 0 0
  fi
}

# Gateway scale: one load generator opens K sessions (K identities) to a gateway of its own,
# the gateway pinned to one core and the load generator to the other when there are two.
scale() {
  local dir="$work/scale" need=$((sessions + 512)) gateway_pid port pin_gateway=() pin_load=()
  say "== gateway scale: $sessions sessions, heartbeats every ${heartbeat}s"
  if (($(ulimit -S -n) < need)); then
    ulimit -S -n "$(ulimit -H -n)"
    (($(ulimit -S -n) >= need)) || die "$sessions sessions need $need file descriptors; ulimit -Hn is $(ulimit -H -n)"
  fi
  if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_gateway=(taskset -c 0) pin_load=(taskset -c 1); fi
  "$bin/aegis-keygen" -q -f "$dir/id_ed25519" -C scale-gateway
  "$drivers/aegis_loadgen" keys --count "$sessions" --seed bench >"$dir/authorized"
  "${pin_gateway[@]}" "$bin/aegis-gateway" --listen 127.0.0.1:0 --identity "$dir/id_ed25519" \
    --authorized "$dir/authorized" --state-dir "$dir/state" --max-sessions $((sessions + 16)) 2>"$dir/gateway.log" &
  gateway_pid=$!
  wait_for "the scale gateway" 30 grep -q "listening on" "$dir/gateway.log" ||
    { cat "$dir/gateway.log" >&2; die "the scale gateway did not start"; }
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$dir/gateway.log" | head -n 1)
  timeout $((120 + sessions / 20 + 3 * heartbeat)) "${pin_load[@]}" "$drivers/aegis_loadgen" run \
    --url "ws://127.0.0.1:$port" --gateway-key "$dir/id_ed25519.pub" --count "$sessions" --seed bench \
    --heartbeat-every "$heartbeat" --heartbeat-for $((2 * heartbeat)) --gateway-pid "$gateway_pid" \
    >"$work/scale.json" || say "bench: aegis_loadgen failed"
  # Its state is of no further use: a bounded graceful stop, then the hard way.
  kill "$gateway_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do gone "$gateway_pid" && break; sleep 0.1; done
  kill -9 "$gateway_pid" 2>/dev/null || true
}

# Backlog: the agent's broker queues N messages while its gateway is down (a port where nothing
# listens), then the gateway comes back on that port and the queue drains to a subscriber on the
# other side. A gateway and brokers of their own: the backend's broker subscribes while the
# gateway is up, then it goes down (SIGKILL) and comes back with its state. The broker's memory
# is read from /proc/PID/status and its queue file (database and log) once all N are queued.
backlog() {
  local n=$backlog_messages dir="$work/backlog" delivered="$work/backlog.out" input="$work/backlog.input"
  local channel=agent.host42.backlog sub pid queue_start queued_at start end rss hwm file_bytes waiting
  local run_limit=$((60 + n / 1000))  # finish's bound for this case
  say "== backlog: $n messages of $size bytes queued with the gateway down, then drained"
  mkdir -p "$dir"
  python3 - "$n" "$size" "$input" <<'PY'
import sys
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
width = max(size - 3, len(str(n - 1)))  # size bytes with the newline
with open(path, "w") as out:
    for i in range(n):
        out.write(f"b-{i:0{width}d}\n")
PY
  start_gateway --name backlog-gateway --state-dir "$dir/gateway-state" --inbox-max-messages $((2 * n)) ||
    die "the backlog gateway did not start"
  start_broker --socket "$dir/backend.sock" --state-dir "$dir/backend-state" ops --log "$dir/backend.log" ||
    die "the backlog's backend broker did not start"
  : >"$delivered"
  timeout $((2 * run_limit)) "$bin/aegis-sub" --socket "$dir/backend.sock" "$channel" -C "$n" >"$delivered" &
  sub=$!
  wait_for "the backlog subscription" 5 subscribed "$dir/backend.sock" "$channel" || die "aegis-sub did not subscribe"
  kill_gateway || true  # its status is the SIGKILL
  start_broker --url "$gateway_url" --socket "$dir/agent.sock" --state-dir "$dir/agent-state" host42 --no-wait \
    --timeout 86400 --log "$dir/agent.log" || die "the backlog's agent broker did not start"
  pid=$(status_field "$dir/agent.sock" pid) || die "the backlog's agent broker does not say its process id"
  queue_start=$(now)
  timeout "$run_limit" "$bin/aegis-send" --socket "$dir/agent.sock" -l "$channel" <"$input" ||
    say "bench: aegis-send failed"
  queued_at=$(now)
  waiting=$(status_field "$dir/agent.sock" queue.waiting) || waiting=0
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
  file_bytes=$(find "$dir/agent-state" -maxdepth 1 -type f \( -name '*.db' -o -name '*.db-wal' \) -printf '%s\n' |
    awk '{ total += $1 } END { print total + 0 }')
  restart_gateway || die "the backlog gateway did not come back"
  start=$(now)
  finish "$sub" "$delivered"
  end=$run_end
  printf '{"messages": %d, "queued": %d, "queue_seconds": %s, "rss_kib": %d, "hwm_kib": %d, "file_bytes": %d, ' \
    "$n" "$waiting" "$(elapsed "$queue_start" "$queued_at")" "$rss" "$hwm" "$file_bytes" \
    >"$work/backlog.json"
  printf '"drain_seconds": %s, "received": %d}\n' "$(elapsed "$start" "$end")" "$(received "$delivered" "$input")" \
    >>"$work/backlog.json"
  "$connect" --stop --socket "$dir/agent.sock" >/dev/null 2>&1 || true
  "$connect" --stop --socket "$dir/backend.sock" >/dev/null 2>&1 || true
  kill_gateway || true  # its status is the SIGKILL
}

# The pipeline of pipeline_aegis through one gateway with its SQLite store, then through two gateways
# sharing a Redis (agent on one, backend on the other), in one run: the rate of each and the CPU
# per message of each gateway and of redis-server.
cluster() {
  local dir="$work/cluster" redis_port redis_pid setup run input out channel sub start i a b pids
  command -v redis-server >/dev/null || die "the cluster case needs redis-server (scripts/deps.sh)"
  mkdir -p "$dir/redis"
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --save '' --appendonly yes \
    --appendfsync always --logfile "$dir/redis.log" &
  redis_pid=$!
  at_exit kill -KILL "$redis_pid"
  wait_for redis-server 10 grep -q "Ready to accept" "$dir/redis.log" || die "redis-server did not start"
  [[ -e $TEST_TMP/host42 ]] || { make_identities gateway host42 ops && authorize agent host42 && authorize backend ops; } ||
    die "cannot make the identities"
  for setup in sqlite redis; do
    if [[ $setup == sqlite ]]; then
      start_gateway --name cluster-single || die "the SQLite gateway did not start"
      a=$gateway_url b=$gateway_url pids="gateway:$gateway_pid"
    else
      start_gateway --name cluster-g1 --redis "redis://127.0.0.1:$redis_port/0" || die "gateway 1 did not start"
      a=$gateway_url pids="gateway-1:$gateway_pid"
      start_gateway --name cluster-g2 --redis "redis://127.0.0.1:$redis_port/0" || die "gateway 2 did not start"
      b=$gateway_url pids+=" gateway-2:$gateway_pid redis-server:$redis_pid"
    fi
    start_broker --url "$a" --socket "$dir/$setup-agent.sock" --state-dir "$dir/$setup-agent" host42 ||
      die "the agent broker did not start"
    start_broker --url "$b" --socket "$dir/$setup-backend.sock" --state-dir "$dir/$setup-backend" ops ||
      die "the backend broker did not start"
    for ((run = 1; run <= runs; run++)); do
      say "== run $run/$runs: cluster, $setup"
      input="$work/input.$run" out="$dir/$setup.out.$run" channel="agent.host42.cluster.$setup.r$run"
      local -A before=()
      for i in $pids; do before[${i%%:*}]=$(cpu_ticks "${i#*:}"); done
      timeout "$run_limit" "$bin/aegis-sub" --socket "$dir/$setup-backend.sock" "$channel" -C "$messages" >"$out" &
      sub=$!
      wait_for "the bench subscription" 5 subscribed "$dir/$setup-backend.sock" "$channel" || die "aegis-sub did not subscribe"
      start=${EPOCHREALTIME/./}
      timeout "$run_limit" "$bin/aegis-send" --socket "$dir/$setup-agent.sock" -l "$channel" <"$input" ||
        say "bench: aegis-send failed"
      finish "$sub" "$out"
      record cluster "$setup" "$run" "$(elapsed "$start" "$run_end")" "$(received "$out" "$input")"
      for ((i = 0; i < 300; i++)); do queue_empty "$dir/$setup-agent.sock" && break; sleep 0.1; done
      for i in $pids; do
        record_cpu cluster "$run" "$setup ${i%%:*}" "$(ticks_seconds $(($(cpu_ticks "${i#*:}") - before[${i%%:*}])))"
      done
    done
  done
}

: >"$results"
for ((run = 1; run <= runs; run++)); do
  if wants pipeline; then
    say "== run $run/$runs: pipeline"
    pipeline_aegis "$run"
    pipeline_mosquitto 1 "$run"
    pipeline_mosquitto 0 "$run"
  fi
  if wants oneshot; then
    say "== run $run/$runs: one-shot"
    oneshot aegis "$run"
    oneshot mosquitto "$run"
  fi
done
if wants rr; then request_reply; fi
if wants scale; then scale; fi
if wants backlog; then backlog; fi
if wants cluster; then cluster; fi

python3 - "$results" "$messages" "$size" "$runs" "$oneshots" "$json_file" "$only" "$requests" "$sessions" \
  "$work/rr.json" "$work/scale.json" "$work/rr.drops" "$cpu_results" "$work/backlog.json" <<'EOF'
import json, os, statistics, sys
path, json_file, only = sys.argv[1], sys.argv[6], sys.argv[7].split(",")
messages, size, runs, oneshots, requests, sessions = (int(sys.argv[i]) for i in (2, 3, 4, 5, 8, 9))
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
def values(case, system, field):
    return [float(r[3 if field == "seconds" else 4]) for r in rows if r[0] == case and r[1] == system]
def median(case, system, field):
    return statistics.median(values(case, system, field))
def driver_output(file):
    try:
        return json.loads(open(file).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None  # the driver failed; its case shows as incomplete
def percentile(samples, p):  # nearest rank, as the drivers
    samples = sorted(samples)
    return samples[max(1, min(len(samples), -(-len(samples) * p // 100))) - 1] if samples else 0.0
def row(case, aegis, mosquitto=None, target=None, met=None, **extra):
    ratio = float(f"{aegis / mosquitto:.3g}") if mosquitto else None
    return {"case": case, "aegis": aegis, "mosquitto": mosquitto, "ratio": ratio, "target": target, "met": met, **extra}

cases, incomplete, notes, pipeline_runs, cpu = [], [], [], [], None
def runs_of(case, system):  # (run, seconds, distinct payloads received, rate) of each run
    out = []
    for r in rows:
        if r[0] == case and r[1] == system:
            seconds, count = float(r[3]), int(r[4])
            out.append((int(r[2]), seconds, count, count / seconds if seconds > 0 else 0.0))
    return out
if "pipeline" in only:
    # Each run's rate (its distinct payloads over its time), then the median of the rates; a
    # target is met only when every run of both sides delivered its whole input.
    aegis_runs = runs_of("pipeline", "aegis")
    aegis_rate = statistics.median(r[3] for r in aegis_runs)
    aegis_complete = all(r[2] == messages for r in aegis_runs)
    for name, case in (("aegis", "pipeline"), ("mosquitto QoS 1", "pipeline-qos1"), ("mosquitto QoS 0", "pipeline-qos0")):
        for run_no, seconds, count, rate in runs_of(case, "mosquitto" if "QoS" in name else "aegis"):
            pipeline_runs.append({"system": name, "run": run_no, "seconds": seconds, "received": count,
                                  "rate": round(rate), "complete": count == messages})
            if count != messages:
                incomplete.append(f"pipeline {name} run {run_no}: {count} of {messages} distinct payloads in {seconds:.2f} s")
    for qos, target in ((1, 3.0), (0, 1.5)):
        mq_runs = runs_of(f"pipeline-qos{qos}", "mosquitto")
        rate = statistics.median(r[3] for r in mq_runs)
        complete = aegis_complete and all(r[2] == messages for r in mq_runs)
        cases.append(row(f"pipeline vs mosquitto QoS {qos} (msgs/s)", round(aegis_rate), round(rate), f">= {target}x",
                         complete and rate > 0 and aegis_rate / rate >= target,
                         aegis_received=min(r[2] for r in aegis_runs), mosquitto_received=min(r[2] for r in mq_runs)))
    # CPU per message sent, each process's median over the runs (microseconds).
    cpu_rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[13]) if line.strip()]
    def cpu_us(case, process):
        values = [float(r[3]) for r in cpu_rows if r[0] == case and r[2] == process]
        return round(statistics.median(values) * 1e6 / messages, 2) if values else None
    cpu = {"aegis": {p: cpu_us("pipeline", p) for p in
                     ("aegis-send", "agent-broker", "aegis-gateway", "backend-broker", "aegis-sub")},
           "mosquitto_qos1": {p: cpu_us("pipeline-qos1", p) for p in ("mosquitto_pub", "mosquitto", "mosquitto_sub")},
           "mosquitto_qos0": {p: cpu_us("pipeline-qos0", p) for p in ("mosquitto_pub", "mosquitto", "mosquitto_sub")}}
if "oneshot" in only:
    a_ms = median("oneshot", "aegis", "seconds") * 1000 / oneshots
    m_ms = median("oneshot", "mosquitto", "seconds") * 1000 / oneshots
    cases.append(row("one-shot send (ms each)", round(a_ms, 2), round(m_ms, 2), "<= 0.5x", a_ms / m_ms <= 0.5))
rr = scale = None
if "rr" in only:
    rr = driver_output(sys.argv[10])
    replies = rr["replies"] if rr else 0
    p50, p99 = (rr["rr_p50_ms"], rr["rr_p99_ms"]) if rr else (None, None)
    cases.append(row("request/reply p50 (ms, one connection)", p50, received=replies))
    cases.append(row("request/reply p99 (ms, one connection)", p99, target="<= 2 ms",
                     met=replies == requests and p99 is not None and p99 <= 2.0, received=replies))
    if replies != requests:
        incomplete.append(f"request/reply: {replies} of {requests} replies")
    drops = int(open(sys.argv[12]).read().strip() or 0) if os.path.exists(sys.argv[12]) else 0
    if rr is not None:
        rr["broker_session_drops"] = drops
    if drops:
        incomplete.append(f"request/reply: the brokers' gateway sessions dropped {drops} times (see their logs)")
    one = {system: [1000 * float(r[3]) for r in rows if r[0] == "rr-oneshot" and r[1] == system and r[4] == "1"]
           for system in ("aegis", "mosquitto")}
    tried = len([r for r in rows if r[0] == "rr-oneshot" and r[1] == "aegis"])
    a, m = round(percentile(one["aegis"], 50), 2), round(percentile(one["mosquitto"], 50), 2)
    cases.append(row("request/reply one-shot p50 (ms, fresh process)", a, m, received=len(one["aegis"]),
                     mosquitto_received=len(one["mosquitto"])))
    if len(one["aegis"]) != tried or len(one["mosquitto"]) != tried:
        incomplete.append(f"request/reply one-shot: aegis {len(one['aegis'])}, mosquitto {len(one['mosquitto'])} of {tried}")
if "scale" in only:
    scale = driver_output(sys.argv[11])
    s = scale or {}
    get = lambda key: s.get(key)
    # The load generator does the client's half of every handshake (the same crypto) on the other
    # core, so the wall rate can be bound by it: the target, handshakes on one core, is judged by
    # the handshakes per second the gateway spent on a CPU (all its threads, in nanoseconds).
    cases.append(row(f"gateway handshakes/s ({sessions} sessions, wall)", get("handshakes_per_s"),
                     received=get("established")))
    cases.append(row("gateway handshakes per gateway CPU-second", get("handshakes_per_gateway_cpu_s"),
                     target=">= 3000 on 1 core",
                     met=scale is not None and s["established"] == sessions and s["handshakes_per_gateway_cpu_s"] >= 3000))
    # Judged at the session count the target names, not below it.
    cases.append(row(f"gateway KiB per idle session ({sessions} sessions)", get("kib_per_session"), target="<= 30 at 10000",
                     met=scale is not None and sessions >= 10000 and s["established"] == sessions
                     and s["kib_per_session"] <= 30))
    if sessions < 10000:
        notes.append(f"gateway KiB per idle session: measured at {sessions} sessions, judged only at 10000 (--big)")
    cases.append(row(f"heartbeat answer p99 (ms, {sessions} sessions)", get("heartbeat_p99_ms"),
                     received=get("heartbeats_answered")))
    cases.append(row("gateway CPU during heartbeats (%)", get("gateway_cpu_heartbeat_percent")))
    if scale is None or s["established"] != sessions or s["dropped"] or s["heartbeats_answered"] != s["heartbeats_sent"]:
        incomplete.append("gateway scale: " + (f'{s["established"]} of {sessions} sessions, {s["dropped"]} dropped, '
                          f'{s["heartbeats_answered"]} of {s["heartbeats_sent"]} heartbeats answered'
                          f'{", first failure: " + s["first_failure"] if s["first_failure"] else ""}'
                          if scale else "the load generator gave no result"))
backlog = None
if "backlog" in only:
    backlog = driver_output(sys.argv[14])
    b = backlog or {}
    n = b.get("messages", 0)
    complete = backlog is not None and b["queued"] == n and b["received"] == n
    mib = lambda kib: round(kib / 1024, 1)
    cases.append(row(f"backlog: broker VmRSS, {n} queued (MiB)", mib(b["rss_kib"]) if backlog else None,
                     target="<= 64 MiB", met=complete and b["rss_kib"] <= 64 * 1024, queued=b.get("queued")))
    cases.append(row(f"backlog: broker VmHWM, {n} queued (MiB)", mib(b["hwm_kib"]) if backlog else None,
                     target="<= 64 MiB", met=complete and b["hwm_kib"] <= 64 * 1024))
    per_message = round(b["file_bytes"] / n, 1) if backlog and n else None
    cases.append(row("backlog: queue file, database + log (B/msg)", per_message, target="<= 250",
                     met=complete and per_message <= 250))
    rate = round(b["received"] / b["drain_seconds"]) if backlog and b["drain_seconds"] > 0 else None
    if backlog:
        b["drain_rate"] = rate
    # Compared with this run's pipeline rate when the pipeline case ran, else printed alone.
    pipeline_rate = round(aegis_rate) if "pipeline" in only else None
    cases.append(row(f"backlog: drained after the gateway is back (msgs/s{', vs pipeline' if pipeline_rate else ''})",
                     rate, target=">= pipeline rate" if pipeline_rate else None,
                     met=(complete and rate >= pipeline_rate) if pipeline_rate else None, pipeline=pipeline_rate,
                     received=b.get("received")))
    if not complete:
        incomplete.append("backlog: " + (f'{b["queued"]} of {n} queued, {b["received"]} distinct payloads delivered'
                                         if backlog else "no result"))

if "cluster" in only:
    # Two gateways through Redis against one SQLite gateway: the median rate, and each process's
    # CPU per message sent (microseconds).
    cpu_rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[13]) if line.strip()]
    cluster_runs = {setup: runs_of("cluster", setup) for setup in ("sqlite", "redis")}
    rates = {setup: round(statistics.median(r[3] for r in rs)) if rs else None for setup, rs in cluster_runs.items()}
    cases.append(row("pipeline, one SQLite gateway (msgs/s)", rates["sqlite"],
                     received=min((r[2] for r in cluster_runs["sqlite"]), default=0)))
    cases.append(row("pipeline, two gateways through Redis (msgs/s)", rates["redis"],
                     received=min((r[2] for r in cluster_runs["redis"]), default=0)))
    for setup, rs in cluster_runs.items():
        for run_no, seconds, count, rate in rs:
            if count != messages:
                incomplete.append(f"cluster {setup} run {run_no}: {count} of {messages} distinct payloads in {seconds:.2f} s")
    processes = sorted({r[2] for r in cpu_rows if r[0] == "cluster"})
    for process in processes:
        values = [float(r[3]) for r in cpu_rows if r[0] == "cluster" and r[2] == process]
        cases.append(row(f"cluster CPU per message, {process} (us)", round(statistics.median(values) * 1e6 / messages, 2)))

def cell(value, suffix=""):
    return "-" if value is None else f"{value}{suffix}"
print(f"\nmessages={messages} size={size}B runs={runs} (median) one-shots={oneshots} requests={requests} sessions={sessions}")
header = ("case", "aegis", "mosquitto", "ratio", "target", "met")
table = [header] + [(c["case"], cell(c["aegis"]), cell(c["mosquitto"]), cell(c["ratio"], "x"), cell(c["target"]),
                     "-" if c["met"] is None else "yes" if c["met"] else "no") for c in cases]
widths = [max(len(r[i]) for r in table) for i in range(len(header))]
for r in table:
    print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
if pipeline_runs:
    print("\npipeline runs (distinct payloads of the run's input received)")
    table = [("system", "run", "seconds", "received", "msgs/s", "complete")] + [
        (r["system"], str(r["run"]), f'{r["seconds"]:.3f}', f'{r["received"]}/{messages}', str(r["rate"]),
         "yes" if r["complete"] else "NO") for r in pipeline_runs]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
if cpu:
    print("\nCPU per message (microseconds of user+system time per message sent, median of the runs)")
    a, q1, q0 = cpu["aegis"], cpu["mosquitto_qos1"], cpu["mosquitto_qos0"]
    def total(*values):
        return None if any(v is None for v in values) else round(sum(values), 2)
    table = [("side", "aegis process", "aegis", "mosquitto process", "QoS 1", "QoS 0"),
             ("sender", "aegis-send", cell(a["aegis-send"]), "mosquitto_pub", cell(q1["mosquitto_pub"]),
              cell(q0["mosquitto_pub"])),
             ("sender's broker", "aegis-connect (agent)", cell(a["agent-broker"]), "-", "-", "-"),
             ("agent side", "send + broker", cell(total(a["aegis-send"], a["agent-broker"])), "mosquitto_pub",
              cell(q1["mosquitto_pub"]), cell(q0["mosquitto_pub"])),
             ("hub", "aegis-gateway", cell(a["aegis-gateway"]), "mosquitto", cell(q1["mosquitto"]), cell(q0["mosquitto"])),
             ("receiver's broker", "aegis-connect (backend)", cell(a["backend-broker"]), "-", "-", "-"),
             ("receiver", "aegis-sub", cell(a["aegis-sub"]), "mosquitto_sub", cell(q1["mosquitto_sub"]),
              cell(q0["mosquitto_sub"])),
             ("all", "every process", cell(total(*a.values())), "every process", cell(total(*q1.values())),
              cell(total(*q0.values())))]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    print("(daemons: /proc/PID/stat over the run, until the agent's queue is empty; clients: getrusage)\n")
for note in notes:
    print(f"note: {note}")
for note in incomplete:
    print(f"incomplete: {note}")
print("complete: " + ("no" if incomplete else "yes"))
report = {"messages": messages, "size": size, "runs": runs, "oneshots": oneshots, "requests": requests,
          "sessions": sessions, "cases": cases, "complete": not incomplete, "incomplete": incomplete,
          "notes": notes, "pipeline_runs": pipeline_runs, "cpu_us_per_message": cpu,
          "request_reply": rr, "scale": scale, "backlog": backlog,
          "raw": [{"case": r[0], "system": r[1], "run": int(r[2]), "seconds": float(r[3]), "count": int(r[4])} for r in rows]}
text = json.dumps(report, indent=2)
print(text)
if json_file:
    open(json_file, "w").write(text + "\n")
EOF
