#!/usr/bin/env bash
# scripts/bench.sh with tiny sizes against the built tools, so the benchmark cannot rot: every
# case runs to the end, prints its table row and JSON, and every message, reply, session and
# heartbeat arrives. Targets are not checked here (a loaded test machine says nothing about them).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench="${AEGIS_SOURCE_DIR:?}/scripts/bench.sh"
[[ -x $AEGIS_BIN/../tests/bench/aegis_loadgen && -x $AEGIS_BIN/../tests/bench/aegis_rr ]] ||
    fail "the benchmark drivers are not built"

# Usage errors: one line, exit status 2, before anything is started.
expect_exit 2 "$bench" --bin "$AEGIS_BIN" --only pipeline,bogus
expect_lines 1 "$err" "stderr"
expect_match "$err" "^bench: error: --only takes" "stderr"
expect_exit 2 "$bench" --bin "$AEGIS_BIN" --sessions 0
expect_match "$err" "^bench: error: " "stderr"
expect_exit 0 "$bench" --help
expect_contains "$out" "--sessions"
expect_contains "$out" "--only"

json="$TEST_TMP/bench.json"
RUN_TIMEOUT=150 expect_exit 0 "$bench" --bin "$AEGIS_BIN" -n 300 -r 1 -m 3 --requests 50 --sessions 20 \
    --heartbeat 1 --backlog 300 --json "$json"
for row in "pipeline vs mosquitto QoS 1" "pipeline vs mosquitto QoS 0" "one-shot send" \
    "request/reply p99 (ms, one connection)" "request/reply one-shot p50" "gateway handshakes/s (20 sessions, wall)" \
    "gateway handshakes per gateway CPU-second" "gateway KiB per idle session (20 sessions)" "heartbeat answer p99" "gateway CPU during heartbeats" \
    "backlog: broker VmRSS" "backlog: broker VmHWM" "backlog: queue file" "backlog: drained after the gateway is back"; do
    line=$(grep -F -- "$row" <<<"$out" | head -n 1)
    expect_match "$line" "  (yes|no|-)\$" "table row '$row'"
done
expect_contains "$out" "complete: yes"
expect_not_contains "$out" "incomplete:"

# The JSON file: every count as asked, every target with its verdict.
run python3 - "$json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["complete"] is True, report["incomplete"]
rr, scale = report["request_reply"], report["scale"]
assert rr["requests"] == 50 and rr["replies"] == 50, rr
assert rr["rr_p50_ms"] > 0 and rr["rr_p99_ms"] >= rr["rr_p50_ms"], rr
assert scale["sessions"] == 20 and scale["established"] == 20 and scale["dropped"] == 0, scale
assert scale["failures"] == 0, scale
assert scale["heartbeats_sent"] >= 20 and scale["heartbeats_answered"] == scale["heartbeats_sent"], scale
assert scale["handshakes_per_s"] > 0 and scale["gateway_rss_idle_kib"] > 0, scale
targets = [case for case in report["cases"] if case["target"]]
backlog = report["backlog"]
assert backlog["queued"] == 300 and backlog["received"] == 300 and backlog["hwm_kib"] >= backlog["rss_kib"] > 0, backlog
assert backlog["file_bytes"] > 0 and backlog["drain_rate"] > 0, backlog
assert len(targets) == 10 and all(isinstance(case["met"], bool) for case in targets), targets
for case in report["cases"][:2]:
    assert case["aegis_received"] == 300 and case["mosquitto_received"] == 300, case
print("ok")
PY
expect_eq "$out" "ok" "JSON report check"
summary
