#!/usr/bin/env bash
# The outbound queue's designs measured side by side (tests/bench/queue_bench.cpp): the first
# schema's one SQLite row per message, one SQLite row per published batch, LMDB (MDB_APPEND), and
# the broker's queue class itself (store: one row per publish, its index in memory), on 100-byte
# messages pushed in group commits of 1, 64 and 1024 messages, then drained (read back, removed
# once acknowledged). Each with every push commit synced to disk (sync full: what the queue does
# today for events) and with commits that survive a killed process but not power loss (normal).
# Prints messages/s pushed and drained, bytes on disk per queued message and peak resident memory.
# Usage: scripts/bench-queue.sh [-n|--messages N] [--single N] [--designs LIST] [--dir DIR] [--json FILE]
# -n: messages per case (default 200000); --single: messages for commits of one message, each
#   an fsync or two (default 10000); --dir: where the stores are written (default: the build
#   directory; refused on a tmpfs, which has no fsync to measure); --designs: a comma-separated
#   subset of rows,batches,lmdb,store.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

messages=200000
single=10000
dir=""
json_file=""
designs="rows,batches,lmdb,store"
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    -n | --messages) messages=$2; shift ;;
    --single) single=$2; shift ;;
    --dir) dir=$2; shift ;;
    --designs) designs=$2; shift ;;
    --json) json_file=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-queue: error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for design in ${designs//,/ }; do
  [[ $design =~ ^(rows|batches|lmdb|store)$ ]] || { echo "bench-queue: error: unknown design '$design'" >&2; exit 2; }
done
for number in "$messages" "$single"; do
  [[ $number =~ ^[1-9][0-9]*$ ]] || { echo "bench-queue: error: counts must be positive integers, not '$number'" >&2; exit 2; }
done

build=$("$root/scripts/build.sh" | tail -n 1)
cmake --build "$build" --target aegis_queue_bench >/dev/null ||
  { echo "bench-queue: error: aegis_queue_bench did not build (is liblmdb-dev installed? scripts/deps.sh)" >&2; exit 1; }
bench=$build/tests/bench/aegis_queue_bench
[[ -n $dir ]] || dir=$build
[[ $(stat -f -c %T "$dir") != tmpfs ]] || { echo "bench-queue: error: $dir is a tmpfs: give --dir on a disk" >&2; exit 2; }
work=$(mktemp -d "$dir/aegis-queue-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

results=$work/results.jsonl
for sync in full normal; do
  for batch in 1 64 1024; do
    n=$messages
    ((batch > 1)) || n=$single
    for design in ${designs//,/ }; do
      echo "== $design, sync $sync, commits of $batch, $n messages" >&2
      "$bench" --design "$design" --dir "$work/$design-$sync-$batch" --messages "$n" --batch "$batch" --sync "$sync" >>"$results"
      rm -rf "${work:?}/$design-$sync-$batch"
    done
  done
done

python3 - "$results" "$json_file" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
header = ("design", "sync", "per commit", "messages", "push msgs/s", "drain msgs/s", "disk B/msg", "peak RSS KiB")
table = [header] + [(r["design"], r["sync"], str(r["batch"]), str(r["messages"]), str(r["push_per_s"]),
                     str(r["drain_per_s"]), str(r["disk_bytes_per_message"]), str(r["peak_rss_kib"])) for r in rows]
widths = [max(len(t[i]) for t in table) for i in range(len(header))]
for t in table:
    print("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))).rstrip())
if sys.argv[2]:
    open(sys.argv[2], "w").write(json.dumps(rows, indent=2) + "\n")
PY
