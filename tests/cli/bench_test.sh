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
for bad in "--sessions 0" "--scale 20,max2" "--fanin-messages 0" "--per-loadgen x"; do
    read -r -a words <<<"$bad"
    expect_exit 2 "$bench" --bin "$AEGIS_BIN" "${words[@]}"
    expect_match "$err" "^bench: error: " "stderr of $bad"
done
expect_exit 0 "$bench" --help
for option in --scale --sessions --per-loadgen --fanin-sessions --fanin-messages --backlog --only nats fanin backlog; do
    expect_contains "$out" "$option"
done
# The load generator's heartbeat phase is a fraction of one slot of the interval.
for phase in 1 -0.5; do
    expect_exit 2 "$AEGIS_BIN/../tests/bench/aegis_loadgen" run --url ws://127.0.0.1:1 --gateway-key x --heartbeat-phase "$phase"
    expect_match "$err" "^aegis_loadgen: error: --heartbeat-phase" "stderr of --heartbeat-phase $phase"
done

# The anchors a machine may lack are left out of the default list, saying why; present, they run.
nats=yes fanin=yes
command -v nats-server >/dev/null && [[ -x $AEGIS_BIN/../tests/bench/nats_bench ]] || nats=no
[[ -x $AEGIS_BIN/../tests/bench/mosquitto_fanin ]] || fanin=no

# Two scale counts, the second over two load generators (--per-loadgen), each from its own address.
json="$TEST_TMP/bench.json"
RUN_TIMEOUT=280 expect_exit 0 "$bench" --bin "$AEGIS_BIN" -n 300 -r 1 -m 3 --requests 50 --scale 20,30 \
    --per-loadgen 20 --heartbeat 1 --fanin-sessions 20 --fanin-messages 5 --backlog 300 --json "$json"
rows=("pipeline vs mosquitto QoS 1" "pipeline vs mosquitto QoS 0" "one-shot send" "one-shot floor: aegis-send --version"
    "request/reply p99 (ms, one connection)" "request/reply one-shot p50"
    "gateway handshakes per gateway CPU-second (lowest, 20-30 sessions)"
    "gateway KiB per idle session (highest, 20-30 sessions)" "heartbeat answer p99 (ms, highest, 20-30 sessions)"
    "backlog: broker VmRSS" "backlog: broker VmHWM" "backlog: queue file" "backlog: drained once the agent reconnected")
[[ $fanin == yes ]] && rows+=("fan-in msgs per hub CPU-second (20 sessions)" "fan-in msgs/s (20 sessions, wall)")
for row in "${rows[@]}"; do
    line=$(grep -F -- "$row" <<<"$out" | head -n 1)
    expect_match "$line" "  (yes|no|-)\$" "table row '$row'"
done
line=$(grep -F -- "one-shot send (ms each)" <<<"$out")
expect_match "$line" "<= 1.0x" "the one-shot target"
if [[ $nats == yes ]]; then
    expect_match "$out" "NATS JetStream +[0-9]+ " "the NATS rows"
else
    expect_contains "$out" "note: nats left out: "
fi
[[ $fanin == yes ]] || expect_contains "$out" "note: fanin left out: "
line=$(grep -E "^30 " <<<"$out" | head -n 1)
expect_match "$line" "^30 +30 +2 " "the scale table's row of 30 sessions"
expect_contains "$out" "complete: yes"
expect_not_contains "$out" "incomplete:"

# The JSON file: every count as asked, every target with its verdict.
run python3 - "$json" "$nats" "$fanin" <<'PY'
import json, sys
report, nats, fanin = json.load(open(sys.argv[1])), sys.argv[2] == "yes", sys.argv[3] == "yes"
assert report["complete"] is True, report["incomplete"]
rr, scale = report["request_reply"], report["scale"]
assert rr["requests"] == 50 and rr["replies"] == 50, rr
assert rr["rr_p50_ms"] > 0 and rr["rr_p99_ms"] >= rr["rr_p50_ms"], rr
assert [s["sessions"] for s in scale] == [20, 30] and [s["processes"] for s in scale] == [1, 2], scale
for s in scale:
    assert s["established"] == s["sessions"] and s["dropped"] == 0 and s["failures"] == 0, s
    assert s["heartbeats_sent"] >= s["sessions"] and s["heartbeats_answered"] == s["heartbeats_sent"], s
    assert s["heartbeat_p99_ms"] >= s["heartbeat_p50_ms"] > 0, s
    assert s["loadgen_cpu_heartbeat_percent"] > 0 and s["gateway_wait_for_core_ms"] >= 0, s
    assert s["loadgen_wait_for_core_ms"] >= 0, s
    assert s["handshakes_per_s"] > 0 and s["handshakes_per_gateway_cpu_s"] > 0 and s["gateway_rss_idle_kib"] > 0, s
    assert s["gateway_busy_open_percent"] > 0 and s["gateway_wakeups_per_handshake"] > 0, s
targets = [case for case in report["cases"] if case["target"]]
backlog = report["backlog"]
assert backlog["queued"] == 300 and backlog["received"] == 300 and backlog["hwm_kib"] >= backlog["rss_kib"] > 0, backlog
assert backlog["file_bytes"] > 0 and backlog["drain_rate"] > 0, backlog
assert 0 <= backlog["reconnect_seconds"] < backlog["drain_seconds"] + 5, backlog
assert len(targets) == 13 and all(isinstance(case["met"], bool) for case in targets), targets
cpu_rows = [case for case in targets if case["case"].startswith("CPU per message, ")]
assert len(cpu_rows) == 2, cpu_rows
for case in cpu_rows:  # 300 messages may take less than a clock tick: not measured is never met
    assert case["met"] is bool(case["aegis"] and case["mosquitto"] and case["aegis"] <= case["mosquitto"]), case
for case in report["cases"][:2]:
    assert case["aegis_received"] == 300 and case["mosquitto_received"] == 300, case
systems = {r["system"] for r in report["pipeline_runs"]}
if nats:
    assert {"NATS core", "NATS JetStream"} <= systems, systems
    assert all(report["nats"][mode]["received"] == 300 for mode in ("core", "jetstream")), report["nats"]
    # Measured for the server too; 300 messages may take it less than a clock tick (0 then).
    assert all(report["cpu_us_per_message"][mode]["nats-server"] >= 0 for mode in ("nats_core", "nats_jetstream")), \
        report["cpu_us_per_message"]
else:
    assert report["nats"] is None and not any("NATS" in s for s in systems), systems
if fanin:
    runs = report["fanin"]["runs"]
    assert sorted(r["system"] for r in runs) == ["aegis", "mosquitto"], runs
    assert all(r["received"] == 100 and r["hub_cpu_s"] > 0 for r in runs), runs
else:
    assert report["fanin"] is None, report["fanin"]
print("ok")
PY
expect_eq "$out" "ok" "JSON report check"
summary
