#!/usr/bin/env bash
# Compares Aegis with mosquitto side by side on loopback: pipeline throughput (lines streamed from
# one sender to one subscriber), one-shot send latency (a fresh process per message), request/reply
# round trips, and how many sessions one gateway holds. Starts gateways, brokers and a mosquitto
# of its own; everything is stopped on exit. Every target is printed with whether it is met.
# Usage: scripts/bench.sh [--quick] [-n|--messages N] [-s|--size BYTES] [-r|--runs R]
#                         [-m|--oneshots M] [--limit SECS] [--requests N] [--sessions K] [--big]
#                         [--heartbeat SECS] [--only CASES] [--json FILE] [--bin TOOLS_DIR]
# Without --bin, builds first (scripts/build.sh); the drivers are taken from TOOLS_DIR/../tests/bench.
# --quick: 20000 messages, one run, 50 one-shots, 100 requests, 500 sessions.
# --limit: stop a pipeline run after SECS (default 60 + 1ms per message); a cut run counts what arrived.
# --requests: timed request/reply round trips (default 2000, so that the p99 is not decided by
#   five samples; a tenth of them as fresh processes).
# --sessions: gateway sessions for the scale case (default 2000; --big: 10000); --heartbeat: each
#   session's heartbeat interval during the scale case (default 5 s, for 2 intervals).
# --only: a comma-separated subset of pipeline,oneshot,rr,scale.
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
only="pipeline,oneshot,rr,scale"
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) messages=20000 runs=1 oneshots=50 requests=100 sessions=500 ;;
    -n | --messages) messages=$2; shift ;;
    -s | --size) size=$2; shift ;;
    -r | --runs) runs=$2; shift ;;
    -m | --oneshots) oneshots=$2; shift ;;
    --json) json_file=$2; shift ;;
    --bin) bin=$2; shift ;;
    --limit) run_limit=$2; shift ;;
    --requests) requests=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --big) sessions=10000 ;;
    --heartbeat) heartbeat=$2; shift ;;
    --only) only=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
usage_error() { echo "bench: error: $*" >&2; exit 2; }
((size >= 12)) || usage_error "--size must be at least 12 bytes"
for number in "$messages" "$runs" "$oneshots" "$requests" "$sessions" "$heartbeat"; do
  [[ $number =~ ^[1-9][0-9]*$ ]] || usage_error "counts, sizes and --heartbeat must be positive integers, not '$number'"
done
IFS=, read -r -a cases <<<"$only"
for case in "${cases[@]}"; do
  [[ $case =~ ^(pipeline|oneshot|rr|scale)$ ]] || usage_error "--only takes pipeline,oneshot,rr,scale, not '$case'"
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

work=$(mktemp -d)
pids=()
cleanup() {
  for sock in "$work/agent.sock" "$work/backend.sock"; do
    [[ -S $sock ]] && timeout 10 "$bin/aegis-connect" --stop --socket "$sock" >/dev/null 2>&1 || true
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: error: $*"; exit 1; }
now() { echo "${EPOCHREALTIME/./}"; }  # microseconds
elapsed() { printf '%d.%06d' $((($2 - $1) / 1000000)) $((($2 - $1) % 1000000)); }  # seconds
lines_in() { wc -l <"$1" | tr -d ' '; }
wait_for() {  # wait_for SECONDS COMMAND...: polls COMMAND every 50ms
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
results="$work/results.tsv"  # case <tab> system <tab> run <tab> seconds <tab> count
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }

needs_brokers=false
if wants pipeline || wants oneshot || wants rr; then needs_brokers=true; fi

if wants pipeline; then
  say "== input: $messages lines of $size bytes"
  input="$work/input"
  python3 - "$messages" "$size" "$input" <<'EOF'
import sys
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as out:
    for i in range(n):
        out.write(f"{i:0{size - 1}d}\n")  # size bytes on the wire (payload size - 1 digits + newline)
EOF
  split -l 20000 -a 4 "$input" "$work/input.part."  # for mosquitto_pub -q 1 (pipeline_mosquitto)
fi

if $needs_brokers; then
  say "== aegis: gateway and brokers"
  for who in gateway agent backend; do
    "$bin/aegis-keygen" -q -f "$work/$who/id_ed25519" -C "$who"
  done
  {
    echo "role=agent,id=host42 $(cat "$work/agent/id_ed25519.pub")"
    echo "role=backend,id=ops $(cat "$work/backend/id_ed25519.pub")"
  } >"$work/authorized"
  "$bin/aegis-gateway" --listen 127.0.0.1:0 --identity "$work/gateway/id_ed25519" \
    --authorized "$work/authorized" --state-dir "$work/gateway/state" 2>"$work/gateway.log" &
  pids+=($!)
  wait_for 10 grep -q "listening on" "$work/gateway.log" || { cat "$work/gateway.log" >&2; die "the gateway did not start"; }
  gw_port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/gateway.log" | head -n 1)
  for who in agent backend; do
    timeout 30 "$bin/aegis-connect" "ws://127.0.0.1:$gw_port" --identity "$work/$who/id_ed25519" \
      --backend-key "$work/gateway/id_ed25519.pub" --socket "$work/$who.sock" \
      --state-dir "$work/$who/state" --log "$work/$who.log" || die "the $who broker did not start"
  done

  say "== mosquitto"
  mq_port=$(free_port)
  cat >"$work/mosquitto.conf" <<EOF
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
EOF
  mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
  pids+=($!)
  wait_for 10 timeout 2 mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t ping -m x ||
    { cat "$work/mosquitto.log" >&2; die "mosquitto did not start"; }
fi

subscribed_aegis() { timeout 5 "$bin/aegis-stat" --json --socket "$work/backend.sock" | grep -qF "$1"; }
subscribed_mosquitto() { [[ $(grep -c " $1" "$work/mosquitto.log") -ge $2 ]]; }
# finish SUB_PID OUT: waits for the subscriber and prints when it finished (microseconds). If its
# output stops growing for 2s (lost messages) or the run bound passes, a watchdog stops it and the
# time of its last growth counts instead.
finish() {
  local pid=$1 out=$2 end
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
  local watchdog=$!
  wait "$pid" 2>/dev/null || true
  end=$(now)
  wait "$watchdog" 2>/dev/null || true
  if [[ -s $out.stalled ]]; then end=$(cat "$out.stalled"); rm -f "$out.stalled"; fi
  echo "$end"
}

pipeline_aegis() {  # pipeline_aegis RUN
  local out="$work/aegis.out" sub start end
  : >"$out"
  timeout "$run_limit" "$bin/aegis-sub" --socket "$work/backend.sock" 'agent.host42.>' -C "$messages" >"$out" &
  sub=$!
  wait_for 5 subscribed_aegis 'agent.host42.>' || sleep 1
  start=$(now)
  timeout "$run_limit" "$bin/aegis-send" --socket "$work/agent.sock" -l agent.host42.bench <"$input" ||
    say "bench: aegis-send failed"
  end=$(finish "$sub" "$out")
  record pipeline aegis "$1" "$(elapsed "$start" "$end")" "$(lines_in "$out")"
}

mq_subs=0
pipeline_mosquitto() {  # pipeline_mosquitto QOS RUN
  local out="$work/mosquitto.out" sub start end
  : >"$out"
  timeout "$run_limit" mosquitto_sub -h 127.0.0.1 -p "$mq_port" -t bench -q "$1" -C "$messages" >"$out" &
  sub=$!
  mq_subs=$((mq_subs + 1))
  wait_for 5 subscribed_mosquitto bench "$mq_subs" || sleep 1
  start=$(now)
  if [[ $1 == 0 ]]; then
    timeout "$run_limit" mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t bench -q 0 -l <"$input" ||
      say "bench: mosquitto_pub failed"
  else
    # mosquitto_pub 2.0.11 -q 1 -l exits at the end of its input without sending what it still
    # holds: of 200,000 lines it delivered 3,398 from a file and 68,933 from a pipe, all of 50,000.
    # So it is given the lines in parts of 20,000, one connection each (a connection costs a few
    # milliseconds, counted in mosquitto's time).
    for part in "$work"/input.part.*; do
      timeout "$run_limit" mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t bench -q 1 -l <"$part" ||
        { say "bench: mosquitto_pub failed"; break; }
    done
  fi
  end=$(finish "$sub" "$out")
  record "pipeline-qos$1" mosquitto "$2" "$(elapsed "$start" "$end")" "$(lines_in "$out")"
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
  pids+=($!)
  wait_for 30 grep -q "^subscribed" "$work/rr-replier.out" || { cat "$work/rr-replier.out" >&2; die "the replier did not subscribe"; }
  timeout $((60 + requests / 10)) "$drivers/aegis_rr" request --socket "$work/agent.sock" --channel agent.host42.rr \
    --count "$requests" >"$work/rr.json" || say "bench: aegis_rr request failed"

  local fifo="$work/rr.fifo" i start end
  mkfifo "$fifo"
  mosquitto_sub -h 127.0.0.1 -p "$mq_port" -t rr/request >"$fifo" &
  pids+=($!)
  mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t rr/response -l <"$fifo" &
  pids+=($!)
  wait_for 10 subscribed_mosquitto rr/request 1 || die "the mosquitto replier did not subscribe"
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
  pids+=("$gateway_pid")
  wait_for 30 grep -q "listening on" "$dir/gateway.log" || { cat "$dir/gateway.log" >&2; die "the scale gateway did not start"; }
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$dir/gateway.log" | head -n 1)
  timeout $((120 + sessions / 20 + 3 * heartbeat)) "${pin_load[@]}" "$drivers/aegis_loadgen" run \
    --url "ws://127.0.0.1:$port" --gateway-key "$dir/id_ed25519.pub" --count "$sessions" --seed bench \
    --heartbeat-every "$heartbeat" --heartbeat-for $((2 * heartbeat)) --gateway-pid "$gateway_pid" \
    >"$work/scale.json" || say "bench: aegis_loadgen failed"
  # Its state is of no further use: a bounded graceful stop, then the hard way.
  kill "$gateway_pid" 2>/dev/null || true
  wait_for 10 bash -c "! kill -0 $gateway_pid" || kill -9 "$gateway_pid" 2>/dev/null || true
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

python3 - "$results" "$messages" "$size" "$runs" "$oneshots" "$json_file" "$only" "$requests" "$sessions" \
  "$work/rr.json" "$work/scale.json" "$work/rr.drops" <<'EOF'
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

cases, incomplete = [], []
if "pipeline" in only:
    aegis_s, aegis_n = median("pipeline", "aegis", "seconds"), median("pipeline", "aegis", "count")
    aegis_rate = aegis_n / aegis_s
    for qos, target in ((1, 3.0), (0, 1.5)):
        case = f"pipeline-qos{qos}"
        s, n = median(case, "mosquitto", "seconds"), median(case, "mosquitto", "count")
        rate = n / s
        cases.append(row(f"pipeline vs mosquitto QoS {qos} (msgs/s)", round(aegis_rate), round(rate), f">= {target}x",
                         aegis_rate / rate >= target and aegis_n == messages,
                         aegis_received=int(aegis_n), mosquitto_received=int(n)))
        if aegis_n != messages or n != messages:
            incomplete.append(f"pipeline QoS {qos}: received aegis {int(aegis_n)}, mosquitto {int(n)} of {messages}")
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
    cases.append(row(f"gateway KiB per idle session ({sessions} sessions)", get("kib_per_session"), target="<= 30 at 10000",
                     met=scale is not None and s["established"] == sessions and s["kib_per_session"] <= 30))
    cases.append(row(f"heartbeat answer p99 (ms, {sessions} sessions)", get("heartbeat_p99_ms"),
                     received=get("heartbeats_answered")))
    cases.append(row("gateway CPU during heartbeats (%)", get("gateway_cpu_heartbeat_percent")))
    if scale is None or s["established"] != sessions or s["dropped"] or s["heartbeats_answered"] != s["heartbeats_sent"]:
        incomplete.append("gateway scale: " + (f'{s["established"]} of {sessions} sessions, {s["dropped"]} dropped, '
                          f'{s["heartbeats_answered"]} of {s["heartbeats_sent"]} heartbeats answered'
                          f'{", first failure: " + s["first_failure"] if s["first_failure"] else ""}'
                          if scale else "the load generator gave no result"))

def cell(value, suffix=""):
    return "-" if value is None else f"{value}{suffix}"
print(f"\nmessages={messages} size={size}B runs={runs} (median) one-shots={oneshots} requests={requests} sessions={sessions}")
header = ("case", "aegis", "mosquitto", "ratio", "target", "met")
table = [header] + [(c["case"], cell(c["aegis"]), cell(c["mosquitto"]), cell(c["ratio"], "x"), cell(c["target"]),
                     "-" if c["met"] is None else "yes" if c["met"] else "no") for c in cases]
widths = [max(len(r[i]) for r in table) for i in range(len(header))]
for r in table:
    print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
for note in incomplete:
    print(f"incomplete: {note}")
print("complete: " + ("no" if incomplete else "yes"))
report = {"messages": messages, "size": size, "runs": runs, "oneshots": oneshots, "requests": requests,
          "sessions": sessions, "cases": cases, "complete": not incomplete, "incomplete": incomplete,
          "request_reply": rr, "scale": scale,
          "raw": [{"case": r[0], "system": r[1], "run": int(r[2]), "seconds": float(r[3]), "count": int(r[4])} for r in rows]}
text = json.dumps(report, indent=2)
print(text)
if json_file:
    open(json_file, "w").write(text + "\n")
EOF
