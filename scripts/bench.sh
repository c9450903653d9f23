#!/usr/bin/env bash
# Compares Aegis with mosquitto side by side on loopback: pipeline throughput (lines streamed from
# one sender to one subscriber) and one-shot send latency (a fresh process per message).
# Starts a gateway, two brokers and a mosquitto of its own; everything is stopped on exit.
# Usage: scripts/bench.sh [--quick] [-n|--messages N] [-s|--size BYTES] [-r|--runs R]
#                         [-m|--oneshots M] [--limit SECS] [--json FILE] [--bin TOOLS_DIR]
# Without --bin, builds first (scripts/build.sh). --quick: 20000 messages, one run, 50 one-shots.
# --limit: stop a pipeline run after SECS (default 60 + 1ms per message); a cut run counts what arrived.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

messages=200000
size=100
runs=3
oneshots=200
json_file=""
bin=""
run_limit=""
usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) messages=20000 runs=1 oneshots=50 ;;
    -n | --messages) messages=$2; shift ;;
    -s | --size) size=$2; shift ;;
    -r | --runs) runs=$2; shift ;;
    -m | --oneshots) oneshots=$2; shift ;;
    --json) json_file=$2; shift ;;
    --bin) bin=$2; shift ;;
    --limit) run_limit=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
((size >= 12)) || { echo "bench: error: --size must be at least 12 bytes" >&2; exit 2; }
command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null ||
  { echo "bench: error: mosquitto and mosquitto-clients are needed (scripts/deps.sh)" >&2; exit 1; }

[[ -n $bin ]] || bin=$("$root/scripts/build.sh" | tail -n 1)/tools
for tool in aegis-gateway aegis-connect aegis-send aegis-sub aegis-stat aegis-keygen; do
  [[ -x $bin/$tool ]] || { echo "bench: error: $bin/$tool is missing" >&2; exit 1; }
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

say "== input: $messages lines of $size bytes"
input="$work/input"
python3 - "$messages" "$size" "$input" <<'EOF'
import sys
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as out:
    for i in range(n):
        out.write(f"{i:0{size - 1}d}\n")  # size bytes on the wire (payload size - 1 digits + newline)
EOF

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
  timeout "$run_limit" mosquitto_pub -h 127.0.0.1 -p "$mq_port" -t bench -q "$1" -l <"$input" ||
    say "bench: mosquitto_pub failed"
  end=$(finish "$sub" "$out")
  record "pipeline-qos$1" mosquitto "$2" "$(elapsed "$start" "$end")" "$(lines_in "$out")"
}

oneshot() {  # oneshot SYSTEM RUN
  local start end i
  start=$(now)
  for ((i = 0; i < oneshots; i++)); do
    if [[ $1 == aegis ]]; then
      timeout 10 "$bin/aegis-send" --socket "$work/agent.sock" --wait-ack agent.host42.oneshot -m x >/dev/null
    else
      timeout 10 mosquitto_pub -h 127.0.0.1 -p "$mq_port" -q 1 -t oneshot -m x
    fi || die "$1 one-shot send failed"
  done
  end=$(now)
  record oneshot "$1" "$2" "$(elapsed "$start" "$end")" "$oneshots"
}

: >"$results"
for ((run = 1; run <= runs; run++)); do
  say "== run $run/$runs: pipeline"
  pipeline_aegis "$run"
  pipeline_mosquitto 1 "$run"
  pipeline_mosquitto 0 "$run"
  say "== run $run/$runs: one-shot"
  oneshot aegis "$run"
  oneshot mosquitto "$run"
done

python3 - "$results" "$messages" "$size" "$runs" "$oneshots" "$json_file" <<'EOF'
import json, statistics, sys
path, messages, size, runs, oneshots, json_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
def median(case, system, field):
    values = [float(r[3 if field == "seconds" else 4]) for r in rows if r[0] == case and r[1] == system]
    return statistics.median(values)

aegis_s, aegis_n = median("pipeline", "aegis", "seconds"), median("pipeline", "aegis", "count")
aegis_rate = aegis_n / aegis_s
cases = []
for qos, target in ((1, 3.0), (0, 1.5)):
    case = f"pipeline-qos{qos}"
    s, n = median(case, "mosquitto", "seconds"), median(case, "mosquitto", "count")
    rate = n / s
    ratio = aegis_rate / rate
    cases.append({"case": f"pipeline vs mosquitto QoS {qos} (msgs/s)", "aegis": round(aegis_rate),
                  "mosquitto": round(rate), "aegis_received": int(aegis_n), "mosquitto_received": int(n),
                  "ratio": float(f"{ratio:.3g}"), "target": f">= {target}x", "met": ratio >= target and aegis_n == messages})
a_ms = median("oneshot", "aegis", "seconds") * 1000 / oneshots
m_ms = median("oneshot", "mosquitto", "seconds") * 1000 / oneshots
ratio = a_ms / m_ms
cases.append({"case": "one-shot send (ms each)", "aegis": round(a_ms, 2), "mosquitto": round(m_ms, 2),
              "ratio": float(f"{ratio:.3g}"), "target": "<= 0.5x", "met": ratio <= 0.5})

print(f"\nmessages={messages} size={size}B runs={runs} (median) one-shots={oneshots}")
header = ("case", "aegis", "mosquitto", "ratio", "target", "met")
table = [header] + [(c["case"], str(c["aegis"]), str(c["mosquitto"]), f'{c["ratio"]}x', c["target"],
                     "yes" if c["met"] else "no") for c in cases]
widths = [max(len(r[i]) for r in table) for i in range(len(header))]
for r in table:
    print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
for c in cases[:2]:
    if c["aegis_received"] != messages or c["mosquitto_received"] != messages:
        print(f'note: {c["case"]}: received aegis {c["aegis_received"]}, mosquitto {c["mosquitto_received"]} of {messages}')
report = {"messages": messages, "size": size, "runs": runs, "oneshots": oneshots, "cases": cases,
          "raw": [{"case": r[0], "system": r[1], "run": int(r[2]), "seconds": float(r[3]), "count": int(r[4])} for r in rows]}
text = json.dumps(report, indent=2)
print(text)
if json_file:
    open(json_file, "w").write(text + "\n")
EOF
