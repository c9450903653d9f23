#!/usr/bin/env bash
# Compares Aegis with mosquitto side by side on loopback: pipeline throughput (lines streamed from
# one sender to one subscriber; NATS core and JetStream beside it), one-shot send latency (a fresh
# process per message), request/reply round trips, fan-in (many sessions publishing at once) and
# how many sessions one gateway holds. Starts gateways, brokers, a mosquitto and a nats-server of
# its own; everything is stopped on exit. Every target is printed with whether it is met.
# Usage: scripts/bench.sh [--quick] [-n|--messages N] [-s|--size BYTES] [-r|--runs R]
#                         [-m|--oneshots M] [--limit SECS] [--requests N] [--scale K,...|--sessions K]
#                         [--heartbeat SECS] [--per-loadgen K] [--fanin-sessions K] [--fanin-messages M]
#                         [--backlog N] [--only CASES] [--json FILE] [--bin TOOLS_DIR] [--work DIR]
# Without --bin, builds first (scripts/build.sh); the drivers are taken from TOOLS_DIR/../tests/bench.
# --work: where the gateways, brokers, mosquitto and nats-server keep their state (default:
#   TOOLS_DIR/.., the build directory), on a disk as a user's would be: refused on a tmpfs.
# --quick: 20000 messages, one run, 50 one-shots, 100 requests, 500 sessions, 20 fan-in messages.
# --limit: stop a pipeline run after SECS (default 60 + 1ms per message); a cut run counts what arrived.
# --requests: timed request/reply round trips (default 2000, so that the p99 is not decided by
#   five samples; a tenth of them as fresh processes).
# --scale: the session counts of the scale table, one gateway each (default 2000,5000,10000,max;
#   max: the most the open-file limit allows, ulimit -Hn less 1,000, at most 100,000; counts of the
#   default over it are left out); --sessions K: the one count K; --heartbeat: each session's
#   heartbeat interval during the scale case (default 5 s, for 2 intervals); --per-loadgen: the
#   most sessions one load generator process opens (default: as many as the open-file limit
#   allows, ulimit -Hn less 1,000, at most 20,000), from a loopback address of its own (127.0.0.2
#   up) for each 5,000 of them.
# --fanin-sessions, --fanin-messages: the fan-in case's sessions (default 1000) and the messages
#   each publishes (default 100).
# --only: a comma-separated subset of pipeline,oneshot,rr,scale,nats,fanin,backlog,cluster (default:
#   all but cluster, which needs redis-server: it streams through two gateways sharing a Redis
#   against one SQLite gateway). nats needs nats-server and tests/bench/nats_bench (libnats-dev),
#   fanin tests/bench/mosquitto_fanin (libmosquitto-dev): without them the default list leaves that
#   case out and says so, an --only naming it fails.
# --backlog N: messages the backlog case queues with the gateway down (default 1000000).
# Pipeline: each run sends fresh payloads tagged with the run on a channel of its own, subscribed
# exactly; a run counts the distinct payloads received that are in its input, and the rate of a
# case is the median of its runs' rates. CPU per message: user+system time of every process on
# each side, from /proc/PID/stat for the daemons (over the run) and from getrusage for the
# clients (bash's `times` in a wrapper, like /usr/bin/time), divided by the messages sent.
# NATS: tests/bench/nats_bench publishes the same input (JetStream: asynchronously, at most 1,000
# publish acknowledgements outstanding, as mosquitto_pub -M 1000) and counts distinct payloads.
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
scale_list="2000,5000,10000,max"
heartbeat=5
fanin_sessions=1000
fanin_messages=100
only="pipeline,oneshot,rr,scale,nats,fanin,backlog"  # backlog: ~80 s for 1,000,000 messages
only_given=false
backlog_messages=1000000
work_parent=""
# Every broker here signs batch format 2 (PROTOCOL.md 5): one fleet of one version, where every
# receiver reads it; signing costs a third of format 1's (a fifth of the agent broker's CPU).
batch_format=(--batch-format 2)
scale_per_process=""  # set from the open-file limit below
usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) messages=20000 runs=1 oneshots=50 requests=100 scale_list=500 fanin_messages=20 ;;
    -n | --messages) messages=$2; shift ;;
    -s | --size) size=$2; shift ;;
    -r | --runs) runs=$2; shift ;;
    -m | --oneshots) oneshots=$2; shift ;;
    --json) json_file=$2; shift ;;
    --bin) bin=$2; shift ;;
    --work) work_parent=$2; shift ;;
    --limit) run_limit=$2; shift ;;
    --requests) requests=$2; shift ;;
    --scale | --sessions) scale_list=$2; shift ;;
    --heartbeat) heartbeat=$2; shift ;;
    --per-loadgen) scale_per_process=$2; shift ;;
    --fanin-sessions) fanin_sessions=$2; shift ;;
    --fanin-messages) fanin_messages=$2; shift ;;
    --only) only=$2 only_given=true; shift ;;
    --backlog) backlog_messages=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
usage_error() { echo "bench: error: $*" >&2; exit 2; }
((size >= 12)) || usage_error "--size must be at least 12 bytes"
IFS=, read -r -a scale_counts <<<"$scale_list"
for number in "$messages" "$runs" "$oneshots" "$requests" "${scale_counts[@]}" "$heartbeat" "${scale_per_process:-1}" \
  "$fanin_sessions" "$fanin_messages" "$backlog_messages"; do
  [[ $number =~ ^[1-9][0-9]*$ || ($number == max && " ${scale_counts[*]} " == *" max "*) ]] ||
    usage_error "counts, sizes and --heartbeat must be positive integers (--scale: or max), not '$number'"
done
IFS=, read -r -a cases <<<"$only"
for case in "${cases[@]}"; do
  [[ $case =~ ^(pipeline|oneshot|rr|scale|nats|fanin|backlog|cluster)$ ]] ||
    usage_error "--only takes pipeline,oneshot,rr,scale,nats,fanin,backlog,cluster, not '$case'"
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
# The anchors that need what a machine may lack: named in --only, missing is an error; in the
# default list, the case is left out with a note in the report.
left_out=()
leave_out() {  # leave_out CASE WHY
  $only_given && { echo "bench: error: --only $1: $2" >&2; exit 1; }
  only=$(tr , '\n' <<<"$only" | grep -vx "$1" | paste -sd ,)
  left_out+=("$1 left out: $2")
}
if wants nats; then
  if ! command -v nats-server >/dev/null; then
    leave_out nats "nats-server is not installed (scripts/deps.sh)"
  elif [[ ! -x $drivers/nats_bench ]]; then
    leave_out nats "$drivers/nats_bench is missing (built where libnats-dev is installed)"
  fi
fi
if wants fanin && [[ ! -x $drivers/mosquitto_fanin ]]; then
  leave_out fanin "$drivers/mosquitto_fanin is missing (built where libmosquitto-dev is installed)"
fi
# The scale table's counts: max is the most the open-file limit allows a gateway (its sessions, and
# 1,000 descriptors to spare); a count of the default list over it is left out.
hard_files=$(ulimit -H -n)
[[ $hard_files == unlimited ]] && hard_files=1000000
scale_max=$(((hard_files - 1000) / 1000 * 1000))
((scale_max <= 100000)) || scale_max=100000
# As few load generators as the limit allows: they share one core, where every process more only
# adds waits for that core to the answers they time (measured: 4 generators of 4,750 sessions
# waited for it several times longer than one of 19,000).
if [[ -z $scale_per_process ]]; then
  scale_per_process=$((hard_files - 1000))
  ((scale_per_process <= 20000)) || scale_per_process=20000
  ((scale_per_process >= 1000)) || scale_per_process=1000
fi
resolved=()
for count in "${scale_counts[@]}"; do
  [[ $count == max ]] && count=$scale_max
  if ((count > scale_max)) && ! $only_given && [[ $scale_list == 2000,5000,10000,max ]]; then
    left_out+=("scale $count sessions left out: ulimit -Hn is $hard_files")
    continue
  fi
  [[ " ${resolved[*]} " == *" $count "* ]] || resolved+=("$count")
done
scale_counts=("${resolved[@]}")
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
if wants pipeline || wants oneshot || wants rr || wants fanin || wants backlog; then needs_brokers=true; fi
# Many sessions need many descriptors: the gateways, mosquitto and the drivers inherit this limit.
if wants fanin || wants scale; then ulimit -S -n "$(ulimit -H -n)"; fi

if wants pipeline || wants nats || wants cluster; then
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
  fanin_options=()
  if wants fanin; then  # the fan-in case's sessions, identities lg0... of the seed "fanin"
    "$drivers/aegis_loadgen" keys --count "$fanin_sessions" --seed fanin >>"$TEST_TMP/authorized"
    fanin_options=(--max-sessions $((fanin_sessions + 64)))
  fi
  start_gateway "${fanin_options[@]}" || die "the gateway did not start"
  start_broker --socket "$work/agent.sock" host42 --log "$work/agent.log" "${batch_format[@]}" ||
    die "the agent broker did not start"
  start_broker --socket "$work/backend.sock" ops --log "$work/backend.log" "${batch_format[@]}" ||
    die "the backend broker did not start"
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

if wants nats; then
  say "== nats-server (JetStream stored in $work/nats)"
  nats_url=nats://127.0.0.1:$(free_port)
  nats-server -a 127.0.0.1 -p "${nats_url##*:}" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
  nats_pid=$!
  wait_for nats-server 10 grep -q "Server is ready" "$work/nats.log" || die "nats-server did not start"
  "$drivers/nats_bench" stream --url "$nats_url" --name BENCH --subject 'bench.js.>' ||
    die "cannot make the JetStream stream"
fi

# schedstat_ns PID FIELD: the sum over all the threads of PID of one field of
# /proc/PID/task/*/schedstat, in nanoseconds so far.
schedstat_ns() {
  local task fields total=0
  for task in /proc/"$1"/task/*/schedstat; do
    read -r -a fields <"$task" 2>/dev/null && total=$((total + fields[$2 - 1]))
  done
  echo "$total"
}
# Time on a CPU: finer than the ticks of /proc/PID/stat for the short phases of the fan-in and
# scale cases.
cpu_ns() { schedstat_ns "$1" 1; }
# Time waiting for a core while runnable: a daemon's answers are late by as much, which is the
# machine's time.
wait_ns() { schedstat_ns "$1" 2; }
# Context switches of all the threads of PID so far, "VOLUNTARY INVOLUNTARY": a voluntary one is a
# wait for work, which a gateway that is not kept busy pays once per message (a wake-up costs it
# more CPU than the message: its caches are cold again); an involuntary one, a wait for a core
# that another process holds (a loaded machine), costs the same way.
switches() {
  awk '/^voluntary_ctxt_switches:/ { v += $2 } /^nonvoluntary_ctxt_switches:/ { n += $2 }
       END { print v + 0, n + 0 }' /proc/"$1"/task/*/status 2>/dev/null || echo 0 0
}
ns_seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# within SECONDS CMD...: whether CMD succeeds within SECONDS (polled): wait_for without failing the
# bench, so that a run that does not get there is reported as incomplete.
within() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

subscribed_mosquitto() { [[ $(grep -c " $1\$" "$work/mosquitto.log") -ge $2 ]]; }
# finish SUB_PID OUT: waits for the subscriber and sets run_end to when it finished (microseconds).
# Called directly, never inside $(...): only this shell can wait for its child, so the end is when
# the subscriber exits, not the watchdog's next poll. If its output stops growing for 2s (lost
# messages; a caller may set stall_us) or the run bound passes, the watchdog stops it and the time
# of its last growth counts.
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
      elif (($(now) - last_change > ${stall_us:-2000000} || SECONDS >= deadline)); then
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

pipeline_nats() {  # pipeline_nats core|jetstream RUN: the same input through nats-server
  local mode=$1 run=$2 out="$work/nats.out.$1.$2" input="$work/input.$2" subject="bench.core.r$2" sub start before
  local -a through=()
  if [[ $mode == jetstream ]]; then subject="bench.js.r$run" through=(--jetstream --stream BENCH --window 1000); fi
  : >"$out"
  before=$(cpu_ticks "$nats_pid")
  "${measured[@]}" "$out.cpu" timeout "$run_limit" "$drivers/nats_bench" sub --url "$nats_url" --subject "$subject" \
    --count "$messages" "${through[@]}" >"$out" 2>"$out.err" &
  sub=$!
  wait_for "the NATS subscription" 10 grep -q "^subscribed" "$out.err" || die "nats_bench sub did not subscribe"
  start=${EPOCHREALTIME/./}
  "${measured[@]}" "$out.pub.cpu" timeout "$run_limit" "$drivers/nats_bench" pub --url "$nats_url" --subject "$subject" \
    "${through[@]}" <"$input" || say "bench: nats_bench pub failed"
  finish "$sub" "$out"
  record "pipeline-nats-$mode" nats "$run" "$(elapsed "$start" "$run_end")" "$(received "$out" "$input")"
  record_cpu "pipeline-nats-$mode" "$run" nats_bench-pub "$(measured_seconds "$out.pub.cpu")"
  record_cpu "pipeline-nats-$mode" "$run" nats-server "$(ticks_seconds $(($(cpu_ticks "$nats_pid") - before)))"
  record_cpu "pipeline-nats-$mode" "$run" nats_bench-sub "$(measured_seconds "$out.cpu")"
}

# Fan-in: K sessions each publish M messages at once, one message a frame (a packet) and at most
# 20 unacknowledged each (mosquitto's default), to one subscriber: aegis_loadgen's sessions through
# the pipeline's gateway to aegis-sub on the backend side, against mosquitto_fanin's QoS 1 clients
# through mosquitto to mosquitto_sub. The drivers open their sessions first and wait (--hold):
# the hub's CPU time (gateway, mosquitto) is read from the go to the subscriber's last message,
# then they close their sessions. The figure: messages per CPU-second of the hub.
fanin_total=$((fanin_sessions * fanin_messages))
fanin_received() {  # fanin_received OUT RUN NAME: distinct lines of OUT that are rRUN-NAMEi-j, i < K, j < M
  python3 - "$1" "$2" "$3" "$fanin_sessions" "$fanin_messages" <<'PY'
import sys
out, run, name, sessions, messages = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
expected = {f"r{run}-{name}{i}-{j}".encode() for i in range(sessions) for j in range(messages)}
print(len(set(open(out, "rb").read().split(b"\n")) & expected))
PY
}
arrived_or_gone() { [[ -s $1 ]] || ! kill -0 "$2" 2>/dev/null; }  # arrived_or_gone OUT SUB_PID
fanin_run() {  # fanin_run SYSTEM RUN HUB_PID SUB_PID OUT DRIVER...: the driver's go, timed to the last message
  # finish()'s stall: while 1,000 sessions publish, the gateway sends the one subscriber's broker
  # about one delivery per turn of its event loop (each connection's reads and writes take their
  # turn), so on a loaded machine deliveries paused for 1-6 s in a run that completed.
  local system=$1 run=$2 hub=$3 sub=$4 out=$5 load before start stall_us=30000000
  shift 5
  "$@" >"$out.load" 2>"$out.load.err" &
  load=$!
  if ! within $((60 + fanin_sessions / 20)) grep -q '"phase": "' "$out.load"; then
    say "bench: the fan-in driver did not open its sessions: $(tail -n 1 "$out.load.err")"
    kill "$load" "$sub" 2>/dev/null || true
    wait "$load" "$sub" 2>/dev/null || true
    record fanin "$system" "$run" 0 0
    return
  fi
  before=$(cpu_ns "$hub")
  start=${EPOCHREALTIME/./}
  kill -USR1 "$load"
  # finish() stops a subscriber whose output stops growing for 2 s, but nothing can arrive before
  # the driver has made every session's first window (aegis_loadgen signs K x 20 batches before it
  # sends one): on a loaded machine that took over 2 s, and the run ended with 0 received. So its
  # watch starts at the first delivery (or the subscriber's end); the time still counts from the go.
  within "$run_limit" arrived_or_gone "$out" "$sub" || true
  say "bench: $system fan-in run $run: first delivery $(elapsed "$start" "${EPOCHREALTIME/./}") s after the go"
  finish "$sub" "$out"
  record_cpu fanin "$run" "$system" "$(ns_seconds $(($(cpu_ns "$hub") - before)))"
  within 30 grep -q '"seconds"\|"publish_seconds"' "$out.load" || say "bench: the fan-in driver did not report"
  kill -USR1 "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || say "bench: the $system fan-in driver failed: $(tail -n 1 "$out.load.err")"
  record fanin "$system" "$run" "$(elapsed "$start" "$run_end")" \
    "$(fanin_received "$out" "$run" "$([[ $system == aegis ]] && echo lg || echo c)")"
}
fanin_aegis() {  # fanin_aegis RUN
  local run=$1 out="$work/fanin.aegis.$1" pattern="agent.*.fanin.r$1" sub
  : >"$out"
  timeout "$run_limit" "$bin/aegis-sub" --socket "$work/backend.sock" "$pattern" -C "$fanin_total" >"$out" &
  sub=$!
  wait_for "the fan-in subscription" 5 subscribed "$work/backend.sock" "$pattern" || die "aegis-sub did not subscribe"
  fanin_run aegis "$run" "$gateway_pid" "$sub" "$out" "$drivers/aegis_loadgen" run --url "$gateway_url" \
    --gateway-key "$TEST_TMP/gateway.pub" --count "$fanin_sessions" --seed fanin --hold --publish "$fanin_messages" \
    --window 20 --topic "fanin.r$run" --tag "r$run" --heartbeat-for 0
}
fanin_mosquitto() {  # fanin_mosquitto RUN
  local run=$1 out="$work/fanin.mosquitto.$1" topic="fanin/r$1" sub
  : >"$out"
  timeout "$run_limit" mosquitto_sub -h 127.0.0.1 -p "$mq_port" -t "$topic/#" -q 1 -C "$fanin_total" >"$out" &
  sub=$!
  wait_for "the mosquitto fan-in subscription" 5 subscribed_mosquitto "$topic/#" 1 || die "mosquitto_sub did not subscribe"
  fanin_run mosquitto "$run" "$mq_pid" "$sub" "$out" "$drivers/mosquitto_fanin" --port "$mq_port" \
    --clients "$fanin_sessions" --messages "$fanin_messages" --window 20 --topic "$topic" --tag "r$run" --hold
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

# The floor: aegis-send --version, timed the same way, is what starting the process costs.
oneshot() {  # oneshot aegis|mosquitto|floor RUN
  local start end i
  start_watchdog $((30 + oneshots / 10)) aegis-send mosquitto_pub
  start=$(now)
  for ((i = 0; i < oneshots; i++)); do
    case $1 in
      aegis) "$bin/aegis-send" --socket "$work/agent.sock" --timeout 10 --wait-ack agent.host42.oneshot -m x >/dev/null ;;
      mosquitto) mosquitto_pub -h 127.0.0.1 -p "$mq_port" -q 1 -t oneshot -m x ;;
      floor) "$bin/aegis-send" --version >/dev/null ;;
    esac || { stop_watchdog; die "$1 one-shot send failed"; }
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

# Gateway scale, one row of the table per count K: a gateway of its own pinned to one core, the
# load generators to the other when there are two, one per --per-loadgen sessions (as few as the
# descriptors allow), each 5,000 sessions from a loopback address of their own (127.0.0.2 up) so
# that no address runs out of ports. The generators open their sessions and wait (--hold); read
# here from /proc: the gateway's CPU while they open (handshakes per gateway CPU-second), its
# resident memory before and once they are idle (KiB per session), its CPU and its waits for a
# core while they beat; the generators give the heartbeats' answer times, merged into one p99,
# with their own waits for a core, and beat in turns (--heartbeat-phase), not all at once. Beside
# the handshakes per gateway CPU-second, the regime they were taken in: the gateway's busy share
# of the phase and its wake-ups per handshake.
scale() {  # scale K
  local sessions=$1 dir="$work/scale.$1" need=$(($1 + 512)) gateway_pid port processes i first count
  local -a pin_gateway=() pin_load=() loads=()
  local rss_before cpu_before cpu_opened switches_before switches_opened rss_idle cpu_beat beat_start cpu_beat_end beat_end complete=true
  local wait_beat wait_beat_end addresses=0 blocks sources j
  say "== gateway scale: $sessions sessions, heartbeats every ${heartbeat}s"
  (($(ulimit -S -n) >= need)) || die "$sessions sessions need $need file descriptors; ulimit -Hn is $(ulimit -H -n)"
  if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_gateway=(taskset -c 0) pin_load=(taskset -c 1); fi
  mkdir -p "$dir"
  "$bin/aegis-keygen" -q -f "$dir/id_ed25519" -C scale-gateway
  "$drivers/aegis_loadgen" keys --count "$sessions" --seed bench >"$dir/authorized"
  "${pin_gateway[@]}" "$bin/aegis-gateway" --listen 127.0.0.1:0 --identity "$dir/id_ed25519" \
    --authorized "$dir/authorized" --state-dir "$dir/state" --max-sessions $((sessions + 16)) 2>"$dir/gateway.log" &
  gateway_pid=$!
  wait_for "the scale gateway" 30 grep -q "listening on" "$dir/gateway.log" ||
    { cat "$dir/gateway.log" >&2; die "the scale gateway did not start"; }
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$dir/gateway.log" | head -n 1)
  processes=$(((sessions + scale_per_process - 1) / scale_per_process))
  rss_before=$(rss_kib "$gateway_pid") cpu_before=$(cpu_ns "$gateway_pid") switches_before=$(switches "$gateway_pid")
  for ((i = 0; i < processes; i++)); do
    first=$((i * sessions / processes)) count=$(((i + 1) * sessions / processes - i * sessions / processes))
    # 5,000 sessions at most from one address, and 64 handshakes in flight for each 5,000, as
    # when each 5,000 had a process of their own.
    blocks=$(((count + 4999) / 5000)) sources=""
    for ((j = 0; j < blocks; j++)); do sources+="${sources:+,}127.0.0.$((addresses + 2))" addresses=$((addresses + 1)); done
    "${pin_load[@]}" "$drivers/aegis_loadgen" run --url "ws://127.0.0.1:$port" --gateway-key "$dir/id_ed25519.pub" \
      --seed bench --first "$first" --count "$count" --bind "$sources" --concurrency $((64 * blocks)) --hold \
      --heartbeat-every "$heartbeat" --heartbeat-for $((2 * heartbeat)) --latencies "$dir/latencies.$i" \
      --heartbeat-phase "$(awk -v i="$i" -v n="$processes" 'BEGIN { print i / n }')" \
      >"$dir/load.$i" 2>"$dir/load.$i.err" &
    loads+=($!)
  done
  all_say() {  # all_say PATTERN: every generator has printed a line matching PATTERN
    local j
    for ((j = 0; j < processes; j++)); do grep -q "$1" "$dir/load.$j" || return 1; done
  }
  if within $((60 + sessions / 100)) all_say '"phase": "opened"'; then
    cpu_opened=$(cpu_ns "$gateway_pid") switches_opened=$(switches "$gateway_pid")
    sleep 1  # settle, as a fleet's idle sessions would
    rss_idle=$(rss_kib "$gateway_pid")
    cpu_beat=$(cpu_ns "$gateway_pid") wait_beat=$(wait_ns "$gateway_pid") beat_start=$(now)
    kill -USR1 "${loads[@]}"
    sleep $((2 * heartbeat))
    cpu_beat_end=$(cpu_ns "$gateway_pid") wait_beat_end=$(wait_ns "$gateway_pid") beat_end=$(now)
    within 30 all_say '"heartbeats_sent"' || { complete=false; say "bench: a load generator did not report"; }
  else
    complete=false
    say "bench: the load generators did not open their sessions: $(cat "$dir"/load.*.err | head -n 3)"
    cpu_opened=$(cpu_ns "$gateway_pid") rss_idle=$(rss_kib "$gateway_pid") switches_opened=$(switches "$gateway_pid")
    cpu_beat=$cpu_opened beat_start=$(now) cpu_beat_end=$cpu_opened beat_end=$beat_start wait_beat=0 wait_beat_end=0
  fi
  kill -USR1 "${loads[@]}" 2>/dev/null || true  # close the sessions (a TERM would do as well)
  for i in "${loads[@]}"; do wait "$i" 2>/dev/null || complete=false; done
  python3 - "$dir" "$sessions" "$processes" "$rss_before" "$rss_idle" "$cpu_before" "$cpu_opened" "$cpu_beat" \
    "$cpu_beat_end" $((beat_end - beat_start)) "$complete" "$switches_before" "$switches_opened" \
    $((wait_beat_end - wait_beat)) \
    >"$work/scale.$sessions.json" <<'PY'
import glob, json, sys
directory = sys.argv[1]
sessions, processes, rss_before, rss_idle = (int(a) for a in sys.argv[2:6])
cpu_before, cpu_opened, cpu_beat, cpu_beat_end, beat_us = (int(a) for a in sys.argv[6:11])
gateway_wait_ns = int(sys.argv[14])
opened, reports = [], []
for i in range(processes):
    for line in open(f"{directory}/load.{i}"):
        (opened if '"phase"' in line else reports).append(json.loads(line))
samples = sorted(float(v) for f in glob.glob(f"{directory}/latencies.*") for v in open(f) if v.strip())
def percentile(p):  # nearest rank, as the drivers
    return samples[max(1, min(len(samples), -(-len(samples) * p // 100))) - 1] if samples else 0.0
established = sum(o["established"] for o in opened)
open_s = (max(o["open_ended_unix_ms"] for o in opened) - min(o["open_started_unix_ms"] for o in opened)) / 1000 \
    if opened else 0.0
open_cpu_s = (cpu_opened - cpu_before) / 1e9
switched = [int(after) - int(before) for before, after in zip(sys.argv[12].split(), sys.argv[13].split())]
failures = [r["first_failure"] for r in reports if r["first_failure"]]
print(json.dumps({
    "sessions": sessions, "processes": processes, "established": established,
    "failures": sum(r["failures"] for r in reports) if reports else sum(o["failures"] for o in opened),
    "dropped": sum(r["dropped"] for r in reports), "complete": sys.argv[11] == "true" and len(reports) == processes,
    "open_seconds": round(open_s, 3), "handshakes_per_s": round(established / open_s) if open_s else 0,
    "gateway_cpu_open_s": round(open_cpu_s, 3),
    "handshakes_per_gateway_cpu_s": round(established / open_cpu_s) if open_cpu_s > 0 else 0,
    # The regime the figure was taken in: a gateway kept busy (near 100 %, few wake-ups) handles
    # many messages per wake-up; one waiting for the load generators wakes up to 3 times a
    # handshake, and each wake-up costs more CPU than a message (caches cold again).
    "gateway_busy_open_percent": round(100 * open_cpu_s / open_s, 1) if open_s else 0.0,
    "gateway_wakeups_per_handshake": round(switched[0] / established, 2) if established else 0.0,
    "gateway_preempted_per_handshake": round(switched[1] / established, 2) if established else 0.0,
    "gateway_rss_before_kib": rss_before, "gateway_rss_idle_kib": rss_idle,
    "kib_per_session": round((rss_idle - rss_before) / established, 2) if established else 0.0,
    "heartbeat_every_s": reports[0]["heartbeat_every_s"] if reports else None,
    "heartbeats_sent": sum(r["heartbeats_sent"] for r in reports),
    "heartbeats_answered": sum(r["heartbeats_answered"] for r in reports),
    "heartbeat_errors": sum(r["heartbeat_errors"] for r in reports),
    "heartbeat_p50_ms": percentile(50), "heartbeat_p99_ms": percentile(99), "heartbeat_max_ms": percentile(100),
    # How late each generator's own loop ran a 1 ms timer meanwhile (the worst generator's p99):
    # an answer waiting for that loop counts its lag too, which is not the gateway's time.
    "loadgen_lag_p99_ms": max((r.get("loadgen_lag_p99_ms", 0.0) for r in reports), default=0.0),
    # While they beat, how long each side waited for a core while it had work (schedstat): the
    # gateway's waits and the generators' (the one that waited most) are the machine's time, in
    # the answer times beside the gateway's own; on a quiet machine both are near 0.
    "gateway_wait_for_core_ms": round(gateway_wait_ns / 1e6, 1),
    "loadgen_wait_for_core_ms": max((r.get("loadgen_wait_for_core_ms", 0.0) for r in reports), default=0.0),
    "loadgen_cpu_heartbeat_percent": max((round(100 * r.get("loadgen_cpu_heartbeat_s", 0.0) / r["heartbeat_seconds"], 1)
                                          for r in reports if r.get("heartbeat_seconds")), default=0.0),
    "gateway_cpu_heartbeat_percent": round(100 * (cpu_beat_end - cpu_beat) / 1e3 / beat_us, 1) if beat_us else 0.0,
    "first_failure": failures[0] if failures else ""}))
PY
  # Its state is of no further use: a bounded graceful stop, then the hard way.
  kill "$gateway_pid" 2>/dev/null || true
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
  start_broker --socket "$dir/backend.sock" --state-dir "$dir/backend-state" ops --log "$dir/backend.log" \
    "${batch_format[@]}" ||
    die "the backlog's backend broker did not start"
  : >"$delivered"
  timeout $((2 * run_limit)) "$bin/aegis-sub" --socket "$dir/backend.sock" "$channel" -C "$n" >"$delivered" &
  sub=$!
  wait_for "the backlog subscription" 5 subscribed "$dir/backend.sock" "$channel" || die "aegis-sub did not subscribe"
  kill_gateway || true  # its status is the SIGKILL
  start_broker --url "$gateway_url" --socket "$dir/agent.sock" --state-dir "$dir/agent-state" host42 --no-wait \
    --timeout 86400 --log "$dir/agent.log" "${batch_format[@]}" || die "the backlog's agent broker did not start"
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
  back=$(now)
  finish "$sub" "$delivered"
  end=$run_end
  # The drain is timed from the agent's new session: the wait before it is the reconnect backoff
  # (up to the harness's --backoff-max of 1 s after the failed attempts), reported apart.
  start=$(($(status_field "$dir/agent.sock" connected_since_ms 2>/dev/null || echo 0) * 1000))
  ((start >= back && start < end)) || start=$back
  printf '{"messages": %d, "queued": %d, "queue_seconds": %s, "rss_kib": %d, "hwm_kib": %d, "file_bytes": %d, ' \
    "$n" "$waiting" "$(elapsed "$queue_start" "$queued_at")" "$rss" "$hwm" "$file_bytes" \
    >"$work/backlog.json"
  printf '"reconnect_seconds": %s, ' "$(elapsed "$back" "$start")" >>"$work/backlog.json"
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
    start_broker --url "$a" --socket "$dir/$setup-agent.sock" --state-dir "$dir/$setup-agent" host42 \
      "${batch_format[@]}" ||
      die "the agent broker did not start"
    start_broker --url "$b" --socket "$dir/$setup-backend.sock" --state-dir "$dir/$setup-backend" ops \
      "${batch_format[@]}" ||
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
  if wants nats; then
    say "== run $run/$runs: NATS core and JetStream"
    pipeline_nats core "$run"
    pipeline_nats jetstream "$run"
  fi
  if wants oneshot; then
    say "== run $run/$runs: one-shot"
    oneshot aegis "$run"
    oneshot mosquitto "$run"
    oneshot floor "$run"
  fi
  if wants fanin; then
    say "== run $run/$runs: fan-in, $fanin_sessions sessions of $fanin_messages messages"
    fanin_aegis "$run"
    fanin_mosquitto "$run"
  fi
done
if wants rr; then request_reply; fi
if wants scale; then
  for count in "${scale_counts[@]}"; do scale "$count"; done
fi
if wants backlog; then backlog; fi
if wants cluster; then cluster; fi

# What the report needs besides its arguments: the fan-in's sizes, the scale table's counts (and
# their files), the cases left out and why.
export BENCH_FANIN="$fanin_sessions $fanin_messages" BENCH_SCALE="${scale_counts[*]}" BENCH_WORK=$work
BENCH_LEFT_OUT=$(printf '%s\n' "${left_out[@]}")
export BENCH_LEFT_OUT
python3 - "$results" "$messages" "$size" "$runs" "$oneshots" "$json_file" "$only" "$requests" "${scale_counts[0]:-0}" \
  "$work/rr.json" "$work/scale.json" "$work/rr.drops" "$cpu_results" "$work/backlog.json" <<'EOF'
import json, os, statistics, sys
path, json_file, only = sys.argv[1], sys.argv[6], sys.argv[7].split(",")
messages, size, runs, oneshots, requests, sessions = (int(sys.argv[i]) for i in (2, 3, 4, 5, 8, 9))
scale_counts = [int(k) for k in os.environ["BENCH_SCALE"].split()]
fanin_sessions, fanin_messages = (int(v) for v in os.environ["BENCH_FANIN"].split())
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
notes += [line for line in os.environ["BENCH_LEFT_OUT"].splitlines() if line]
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
nats = None
if "nats" in only:
    # The NATS anchor: reported beside the pipeline, no target yet.
    nats = {}
    for name, mode in (("NATS core", "core"), ("NATS JetStream", "jetstream")):
        nats_runs = runs_of(f"pipeline-nats-{mode}", "nats")
        for run_no, seconds, count, rate in nats_runs:
            pipeline_runs.append({"system": name, "run": run_no, "seconds": seconds, "received": count,
                                  "rate": round(rate), "complete": count == messages})
            if count != messages:
                incomplete.append(f"pipeline {name} run {run_no}: {count} of {messages} distinct payloads in {seconds:.2f} s")
        nats[mode] = {"rate": round(statistics.median(r[3] for r in nats_runs)),
                      "received": min(r[2] for r in nats_runs), "complete": all(r[2] == messages for r in nats_runs)}
if "pipeline" in only or "nats" in only:
    # CPU per message sent, each process's median over the runs (microseconds).
    cpu_rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[13]) if line.strip()]
    def cpu_us(case, process):
        values = [float(r[3]) for r in cpu_rows if r[0] == case and r[2] == process]
        return round(statistics.median(values) * 1e6 / messages, 2) if values else None
    nats_processes = ("nats_bench-pub", "nats-server", "nats_bench-sub")
    cpu = {"aegis": {p: cpu_us("pipeline", p) for p in
                     ("aegis-send", "agent-broker", "aegis-gateway", "backend-broker", "aegis-sub")},
           "mosquitto_qos1": {p: cpu_us("pipeline-qos1", p) for p in ("mosquitto_pub", "mosquitto", "mosquitto_sub")},
           "mosquitto_qos0": {p: cpu_us("pipeline-qos0", p) for p in ("mosquitto_pub", "mosquitto", "mosquitto_sub")},
           "nats_core": {p: cpu_us("pipeline-nats-core", p) for p in nats_processes},
           "nats_jetstream": {p: cpu_us("pipeline-nats-jetstream", p) for p in nats_processes}}
    if "pipeline" in only:
        # The CPU targets: a fleet host's side (aegis-send and its broker) against mosquitto_pub, the
        # hub against mosquitto, both at QoS 1; met only when every pipeline run was complete and the
        # process's CPU time was measured at all (a run too short for one clock tick is not).
        a, q1 = cpu["aegis"], cpu["mosquitto_qos1"]
        agent_side = round(a["aegis-send"] + a["agent-broker"], 2) if None not in (a["aegis-send"], a["agent-broker"]) else None
        complete = all(r["complete"] for r in pipeline_runs if r["system"] in ("aegis", "mosquitto QoS 1"))
        for case, ours, theirs in (("CPU per message, agent side: aegis-send + broker vs mosquitto_pub QoS 1 (us)",
                                    agent_side, q1["mosquitto_pub"]),
                                   ("CPU per message, hub: gateway vs mosquitto QoS 1 (us)", a["aegis-gateway"],
                                    q1["mosquitto"])):
            cases.append(row(case, ours, theirs, "<= 1.0x",
                             complete and None not in (ours, theirs) and 0 < ours <= theirs))
if "oneshot" in only:
    # Target 1.0x mosquitto_pub -q 1; the floor, aegis-send --version timed the same way, is what
    # starting the process costs (no send can be faster).
    a_ms = median("oneshot", "aegis", "seconds") * 1000 / oneshots
    m_ms = median("oneshot", "mosquitto", "seconds") * 1000 / oneshots
    floor_ms = median("oneshot", "floor", "seconds") * 1000 / oneshots
    cases.append(row("one-shot send (ms each)", round(a_ms, 2), round(m_ms, 2), "<= 1.0x", a_ms / m_ms <= 1.0))
    cases.append(row("one-shot floor: aegis-send --version (ms each)", round(floor_ms, 2)))
fanin = None
if "fanin" in only:
    # Messages per CPU-second of the hub (the gateway, mosquitto) from the go to the last message
    # at the subscriber; the median of the runs' figures. Reported, no target.
    total = fanin_sessions * fanin_messages
    cpu_rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[13]) if line.strip()]
    fanin = {"sessions": fanin_sessions, "messages_per_session": fanin_messages, "runs": []}
    for system in ("aegis", "mosquitto"):
        for r in rows:
            if r[0] != "fanin" or r[1] != system:
                continue
            cpu_s = next((float(c[3]) for c in cpu_rows if c[0] == "fanin" and c[1] == r[2] and c[2] == system), 0.0)
            seconds, count = float(r[3]), int(r[4])
            fanin["runs"].append({"system": system, "run": int(r[2]), "seconds": seconds, "received": count,
                                  "hub_cpu_s": cpu_s, "msgs_per_s": round(count / seconds) if seconds else 0,
                                  "msgs_per_hub_cpu_s": round(count / cpu_s) if cpu_s else 0})
            if count != total:
                incomplete.append(f"fan-in {system} run {r[2]}: {count} of {total} distinct payloads in {seconds:.2f} s")
    def fanin_median(system, key):
        figures = [r[key] for r in fanin["runs"] if r["system"] == system]
        return round(statistics.median(figures)) if figures else None
    fanin.update({f"{system}_{key}": fanin_median(system, key) for system in ("aegis", "mosquitto")
                  for key in ("msgs_per_s", "msgs_per_hub_cpu_s")})
    cases.append(row(f"fan-in msgs per hub CPU-second ({fanin_sessions} sessions)", fanin["aegis_msgs_per_hub_cpu_s"],
                     fanin["mosquitto_msgs_per_hub_cpu_s"]))
    cases.append(row(f"fan-in msgs/s ({fanin_sessions} sessions, wall)", fanin["aegis_msgs_per_s"],
                     fanin["mosquitto_msgs_per_s"]))
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
    # One gateway per session count. The load generators do the client's half of every handshake
    # (the same crypto) on the other core, so the wall rate can be bound by them: the target,
    # handshakes on one core, is judged by the handshakes per second the gateway spent on a CPU
    # (all its threads, in nanoseconds), in every run. Memory and heartbeats are judged flat from
    # 2,000 sessions up, at every count of the table from there.
    scale = [driver_output(os.path.join(os.environ["BENCH_WORK"], f"scale.{k}.json")) or {"sessions": k}
             for k in scale_counts]
    def whole(s):
        return (s.get("complete") and s["established"] == s["sessions"] and not s["dropped"]
                and s["heartbeats_answered"] == s["heartbeats_sent"])
    for s in scale:
        if not whole(s):
            incomplete.append(f'gateway scale, {s["sessions"]} sessions: ' + (
                f'{s["established"]} established, {s["dropped"]} dropped, '
                f'{s["heartbeats_answered"]} of {s["heartbeats_sent"]} heartbeats answered'
                f'{", first failure: " + s["first_failure"] if s["first_failure"] else ""}'
                if "established" in s else "the load generators gave no result"))
    judged = [s for s in scale if s["sessions"] >= 2000]
    span = f'{scale_counts[0]}-{scale_counts[-1]}' if len(scale_counts) > 1 else f"{scale_counts[0]}"
    worst = lambda key, pick: pick((s.get(key) for s in scale if s.get(key) is not None), default=None)
    worst_judged = lambda key: max((s.get(key) for s in judged if s.get(key) is not None), default=None)
    cases.append(row(f"gateway handshakes per gateway CPU-second (lowest, {span} sessions)",
                     worst("handshakes_per_gateway_cpu_s", min), target=">= 3000 on 1 core",
                     met=all(whole(s) and s["handshakes_per_gateway_cpu_s"] >= 3000 for s in scale)))
    cases.append(row(f"gateway KiB per idle session (highest, {span} sessions)", worst_judged("kib_per_session"),
                     target="<= 10 from 2000", met=bool(judged) and all(whole(s) and s["kib_per_session"] <= 10
                                                                      for s in judged)))
    cases.append(row(f"heartbeat answer p99 (ms, highest, {span} sessions)", worst_judged("heartbeat_p99_ms"),
                     target="<= 5 ms from 2000", met=bool(judged) and all(whole(s) and s["heartbeat_p99_ms"] <= 5
                                                                         for s in judged)))
    if not judged:
        notes.append(f"gateway memory and heartbeats: measured at {span} sessions, judged only from 2000 (--scale)")
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
    cases.append(row(f"backlog: drained once the agent reconnected (msgs/s{', vs pipeline' if pipeline_rate else ''})",
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
print(f"\nmessages={messages} size={size}B runs={runs} (median) one-shots={oneshots} requests={requests} "
      f"sessions={','.join(map(str, scale_counts))} fan-in={fanin_sessions}x{fanin_messages}")
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
if nats:
    print("\npipeline anchors (msgs/s, median of the runs' rates; NATS reported, no target)")
    rates = {name: round(statistics.median(r["rate"] for r in pipeline_runs if r["system"] == name))
             for name in dict.fromkeys(r["system"] for r in pipeline_runs)}
    table = [("system", "msgs/s", "aegis / system")] + [
        (name, str(rate), f'{rates["aegis"] / rate:.3g}x' if "aegis" in rates and rate else "-")
        for name, rate in rates.items()]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
if cpu:
    print("\nCPU per message (microseconds of user+system time per message sent, median of the runs)")
    a, q1, q0 = cpu["aegis"], cpu["mosquitto_qos1"], cpu["mosquitto_qos0"]
    nc, nj = cpu["nats_core"], cpu["nats_jetstream"]
    def total(*values):
        return None if any(v is None for v in values) else round(sum(values), 2)
    table = [("side", "aegis process", "aegis", "mosquitto process", "QoS 1", "QoS 0", "NATS process", "core",
              "JetStream"),
             ("sender", "aegis-send", cell(a["aegis-send"]), "mosquitto_pub", cell(q1["mosquitto_pub"]),
              cell(q0["mosquitto_pub"]), "nats_bench pub", cell(nc["nats_bench-pub"]), cell(nj["nats_bench-pub"])),
             ("sender's broker", "aegis-connect (agent)", cell(a["agent-broker"]), "-", "-", "-", "-", "-", "-"),
             ("agent side", "send + broker", cell(total(a["aegis-send"], a["agent-broker"])), "mosquitto_pub",
              cell(q1["mosquitto_pub"]), cell(q0["mosquitto_pub"]), "nats_bench pub", cell(nc["nats_bench-pub"]),
              cell(nj["nats_bench-pub"])),
             ("hub", "aegis-gateway", cell(a["aegis-gateway"]), "mosquitto", cell(q1["mosquitto"]), cell(q0["mosquitto"]),
              "nats-server", cell(nc["nats-server"]), cell(nj["nats-server"])),
             ("receiver's broker", "aegis-connect (backend)", cell(a["backend-broker"]), "-", "-", "-", "-", "-", "-"),
             ("receiver", "aegis-sub", cell(a["aegis-sub"]), "mosquitto_sub", cell(q1["mosquitto_sub"]),
              cell(q0["mosquitto_sub"]), "nats_bench sub", cell(nc["nats_bench-sub"]), cell(nj["nats_bench-sub"])),
             ("all", "every process", cell(total(*a.values())), "every process", cell(total(*q1.values())),
              cell(total(*q0.values())), "every process", cell(total(*nc.values())), cell(total(*nj.values())))]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    print("(daemons: /proc/PID/stat over the run, until the agent's queue is empty; clients: getrusage)\n")
if fanin:
    print(f"fan-in runs ({fanin_sessions} sessions x {fanin_messages} messages; hub: the gateway, mosquitto)")
    table = [("system", "run", "seconds", "received", "msgs/s", "hub CPU s", "msgs per hub CPU-s")] + [
        (r["system"], str(r["run"]), f'{r["seconds"]:.3f}', f'{r["received"]}/{fanin_sessions * fanin_messages}',
         str(r["msgs_per_s"]), f'{r["hub_cpu_s"]:.3f}', str(r["msgs_per_hub_cpu_s"])) for r in fanin["runs"]]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    print()
if scale:
    print("gateway scale (one gateway per row; idle memory over the sessions; heartbeats every "
          f"{scale[0].get('heartbeat_every_s') or '-'} s for two intervals)")
    table = [("sessions", "established", "loadgens", "handshakes/s", "per gw CPU-s", "gw busy %", "wake-ups/hs",
              "KiB/session", "heartbeat p50 ms", "p99 ms", "loadgen lag p99 ms", "gateway CPU %", "loadgen CPU %",
              "waits for a core ms: gateway", "loadgen")] + [
        (str(s["sessions"]), cell(s.get("established")), cell(s.get("processes")), cell(s.get("handshakes_per_s")),
         cell(s.get("handshakes_per_gateway_cpu_s")), cell(s.get("gateway_busy_open_percent")),
         cell(s.get("gateway_wakeups_per_handshake")), cell(s.get("kib_per_session")), cell(s.get("heartbeat_p50_ms")),
         cell(s.get("heartbeat_p99_ms")), cell(s.get("loadgen_lag_p99_ms")),
         cell(s.get("gateway_cpu_heartbeat_percent")), cell(s.get("loadgen_cpu_heartbeat_percent")),
         cell(s.get("gateway_wait_for_core_ms")), cell(s.get("loadgen_wait_for_core_ms"))) for s in scale]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    print()
for note in notes:
    print(f"note: {note}")
for note in incomplete:
    print(f"incomplete: {note}")
print("complete: " + ("no" if incomplete else "yes"))
report = {"messages": messages, "size": size, "runs": runs, "oneshots": oneshots, "requests": requests,
          "sessions": scale_counts, "cases": cases, "complete": not incomplete, "incomplete": incomplete,
          "notes": notes, "pipeline_runs": pipeline_runs, "cpu_us_per_message": cpu,
          "request_reply": rr, "scale": scale, "nats": nats, "fanin": fanin, "backlog": backlog,
          "raw": [{"case": r[0], "system": r[1], "run": int(r[2]), "seconds": float(r[3]), "count": int(r[4])} for r in rows]}
text = json.dumps(report, indent=2)
print(text)
if json_file:
    open(json_file, "w").write(text + "\n")
EOF
