#!/usr/bin/env bash
# aegis-send and aegis-sub in full, against a real gateway and brokers on 127.0.0.1: streamed
# lines in order, every output format, filters, time-outs, request and reply through --exec.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- keys, gateway, an agent broker (host42) and two backend brokers (soc, soc2) ------------------
make_identities gateway host42 soc soc2
soc_fp=$(fingerprint "$TEST_TMP/soc.pub")
authorize agent host42
authorize backend soc
authorize backend soc2
start_gateway
start_broker host42
a_sock=$broker_sock
start_broker soc
b_sock=$broker_sock
start_broker soc2
b2_sock=$broker_sock

# --- 1,003 lines streamed through -l arrive in order -----------------------------------------------
# aegis-send gathers lines into publish_batch requests; an empty line is a message, and a line
# too long for a batch (300,000 bytes) goes alone, between two batches, in its place.
"$sub" --socket "$a_sock" -C 1003 -W 40 backend.host42.lines >"$TEST_TMP/lines.out" 2>"$TEST_TMP/lines.err" &
sub_pid=$!
wait_for "the lines subscription" subscribed "$a_sock" backend.host42.lines
{
    seq 1 500
    echo
    head -c 300000 /dev/zero | tr '\0' x
    echo
    echo
    seq 501 1000
} >"$TEST_TMP/lines.in"
expect_exit 0 "$send" --socket "$b_sock" --print-id -l backend.host42.lines <"$TEST_TMP/lines.in"
expect_eq "$(sort -u <<<"$out" | grep -cE '^[0-9a-f]{32}$')" 1003 "distinct ids printed by --print-id"
wait "$sub_pid" || fail "aegis-sub -C 1003: exit $?: $(cat "$TEST_TMP/lines.err")"
cmp -s "$TEST_TMP/lines.in" "$TEST_TMP/lines.out" || fail "the 1,003 lines differ: $(diff "$TEST_TMP/lines.in" "$TEST_TMP/lines.out" | cut -c1-80 | head -5)"
check_passed

# --- -l --wait-ack: each line its own publish, each acknowledged by the gateway -----------------------
"$sub" --socket "$a_sock" -C 3 -W 40 backend.host42.acked >"$TEST_TMP/acked.out" 2>"$TEST_TMP/acked.err" &
sub_pid=$!
wait_for "the acked subscription" subscribed "$a_sock" backend.host42.acked
expect_exit 0 "$send" --socket "$b_sock" --wait-ack --print-id -l backend.host42.acked < <(printf 'a\n\nc\n')
expect_eq "$(sort -u <<<"$out" | grep -cE '^[0-9a-f]{32}$')" 3 "distinct ids printed by -l --wait-ack"
wait "$sub_pid" || fail "aegis-sub -C 3: exit $?: $(cat "$TEST_TMP/acked.err")"
expect_eq "$(cat "$TEST_TMP/acked.out")" $'a\n\nc' "lines sent with --wait-ack"
check_passed

# --- a line that comes alone is sent and printed at once: neither tool holds it for the next one -----
# aegis-send -l coalesces requests and aegis-sub its output, each only while more is already there.
mkfifo "$TEST_TMP/slow.in"
"$sub" --socket "$a_sock" -W 60 backend.host42.slow >"$TEST_TMP/slow.out" 2>"$TEST_TMP/slow.err" &
sub_pid=$!
wait_for "the slow subscription" subscribed "$a_sock" backend.host42.slow
"$send" --socket "$b_sock" -l backend.host42.slow <"$TEST_TMP/slow.in" &
send_pid=$!
exec {slow}>"$TEST_TMP/slow.in"
echo first >&"$slow"
wait_for "the first line while aegis-send's input stays open" grep -qx first "$TEST_TMP/slow.out"
echo second >&"$slow"
wait_for "the second line" grep -qx second "$TEST_TMP/slow.out"
exec {slow}>&-
wait "$send_pid" || fail "aegis-send -l from a pipe: exit $?"
kill "$sub_pid" 2>/dev/null
wait "$sub_pid" 2>/dev/null
expect_eq "$(cat "$TEST_TMP/slow.out")" $'first\nsecond' "lines sent one at a time"
check_passed

# --- --json: every field, the verified origin, headers and ttl; --print-id, --json and -n on send ------
"$sub" --socket "$a_sock" -C 1 -W 20 --json backend.host42.json >"$TEST_TMP/json.out" &
sub_pid=$!
wait_for "the json subscription" subscribed "$a_sock" backend.host42.json
expect_exit 0 "$send" --socket "$b_sock" --print-id -H trace=abc -H content-type=text/plain --ttl 5m \
    -p high backend.host42.json -m 'payload "quoted"'
sent_id=$out
expect_match "$sent_id" '^[0-9a-f]{32}$' "--print-id"
wait "$sub_pid" || fail "aegis-sub --json failed"
"$python" - "$TEST_TMP/json.out" "$soc_fp" "$sent_id" <<'PY' || fail "the --json line is wrong: $(cat "$TEST_TMP/json.out")"
import json, sys
line = json.loads(open(sys.argv[1]).read())
assert line["origin_fingerprint"] == sys.argv[2], line
assert line["id"] == sys.argv[3], line
assert line["origin_id"] == "soc" and line["verified"] is True
assert line["channel"] == "backend.host42.json" and line["priority"] == "high" and line["kind"] == "event"
assert line["headers"] == {"trace": "abc", "content-type": "text/plain"}, line["headers"]
assert 290000 <= line["expires_ms"] - line["timestamp_ms"] <= 300000, line
assert line["timestamp"].endswith("Z") and line["timestamp"][:2] == "20"
assert line["payload"] == 'payload "quoted"'
PY
check_passed
expect_exit 0 "$send" --socket "$b_sock" -n 3 --json backend.host42.nobody -m x
expect_lines 3 "$out" "send --json"
"$python" -c 'import json,sys; ids={json.loads(l)["id"] for l in sys.stdin}; assert len(ids)==3' <<<"$out" ||
    fail "send -n 3 --json: $out"
check_passed

# --- -F with every directive and escape; -0 -----------------------------------------------------------------
"$sub" --socket "$a_sock" -C 1 -W 20 -F '%c|%p|%i|%o|%f|%t|%x|%l|%k|%%\t\\\0<\n' backend.host42.fmt >"$TEST_TMP/fmt.out" &
sub_pid=$!
wait_for "the format subscription" subscribed "$a_sock" backend.host42.fmt
expect_exit 0 "$send" --socket "$b_sock" --print-id backend.host42.fmt -m 'Hi'
fmt_id=$out
wait "$sub_pid" || fail "aegis-sub -F failed"
"$python" - "$TEST_TMP/fmt.out" "$fmt_id" "$soc_fp" <<'PY' || fail "-F output: $(od -c "$TEST_TMP/fmt.out" | head)"
import re, sys
data = open(sys.argv[1], "rb").read()
prefix = f"backend.host42.fmt|Hi|{sys.argv[2]}|soc|{sys.argv[3]}|".encode()
assert data.startswith(prefix), data
rest = data[len(prefix):]
assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\|4869\|2\|event\|%\t\\\x00<\n\n", rest), rest
PY
check_passed

"$sub" --socket "$a_sock" -C 2 -W 20 -0 backend.host42.nul >"$TEST_TMP/nul.out" &
sub_pid=$!
wait_for "the -0 subscription" subscribed "$a_sock" backend.host42.nul
printf 'one\ntwo lines\0second\0' | "$send" --socket "$b_sock" -0 backend.host42.nul || fail "send -0 failed"
wait "$sub_pid" || fail "aegis-sub -0 failed"
[[ $(od -An -c "$TEST_TMP/nul.out" | tr -s ' \n' ' ') == ' o n e \n t w o l i n e s \0 s e c o n d \0 ' ]] ||
    fail "-0 output: $(od -c "$TEST_TMP/nul.out")"
check_passed

# --- -W time-outs and usage errors ------------------------------------------------------------------
expect_error 5 "$sub" --socket "$a_sock" -W 300ms backend.host42.silence
expect_error 5 "$sub" --socket "$a_sock" -C 2 -W 0.3 backend.host42.silence
expect_error 2 "$sub" --socket "$a_sock" -W soon backend.host42.silence
expect_error 2 "$sub" --socket "$a_sock" -F '%q' backend.host42.silence
expect_error 2 "$sub" --socket "$a_sock" --drain backend.host42.silence
expect_error 2 "$send" --socket "$b_sock" --ttl 0 backend.host42.x -m x
expect_error 2 "$send" --socket "$b_sock" -H novalue backend.host42.x -m x
expect_error 2 "$send" --socket "$b_sock" --request backend.x -m x
expect_error 3 "$send" --socket "$TEST_TMP/none.sock" backend.host42.x -m x
# A payload file that cannot be read is bad input, with the reason, before any broker is asked.
expect_error 6 "$send" --socket "$TEST_TMP/none.sock" backend.host42.x -f "$TEST_TMP/no-such-file"
expect_contains "$err" "no-such-file: No such file or directory"
expect_error 4 "$send" --socket "$a_sock" --wait-ack backend.host42.x -m "an agent may not publish here"

# --- --from keeps one signer's messages -------------------------------------------------------------
"$sub" --socket "$a_sock" -C 1 -W 20 -v --from "$soc_fp" backend.host42.from >"$TEST_TMP/from.out" &
sub_pid=$!
wait_for "the --from subscription" subscribed "$a_sock" backend.host42.from
expect_exit 0 "$send" --socket "$b2_sock" --wait-ack backend.host42.from -m "from soc2"
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.from -m "from soc"
wait "$sub_pid" || fail "aegis-sub --from failed"
expect_eq "$(cat "$TEST_TMP/from.out")" "backend.host42.from from soc" "--from output"

# --- a closed standard output ends aegis-sub quietly -------------------------------------------------------
"$sub" --socket "$a_sock" -C 5 -W 20 backend.host42.pipe 2>"$TEST_TMP/pipe.err" \
    > >(echo "$BASHPID" >"$TEST_TMP/head.pid" && exec head -n 1 >"$TEST_TMP/pipe.out") &
pipe_pid=$!
wait_for "the pipe subscription" subscribed "$a_sock" backend.host42.pipe
expect_exit 0 "$send" --socket "$b_sock" backend.host42.pipe -m a
# head exits after its line, and the pipe has no reader left: the next message meets it closed.
wait_for "head to read its line and exit" eval 'test -s "$TEST_TMP/pipe.out" && gone "$(cat "$TEST_TMP/head.pid")"'
expect_exit 0 "$send" --socket "$b_sock" backend.host42.pipe -m b
wait "$pipe_pid" || fail "aegis-sub after its reader went away: exit $?"
check_passed
expect_eq "$(cat "$TEST_TMP/pipe.out")" "a" "head's line"
expect_eq "$(cat "$TEST_TMP/pipe.err")" "" "aegis-sub's stderr after head closed the pipe"

# --- request and reply: aegis-sub --exec answers aegis-send --request ----------------------------------------
"$sub" --socket "$a_sock" --exec 'read -r x; if [ "$x" = fail ]; then echo "bad $AEGIS_KIND"; exit 3; fi; echo "$x $AEGIS_ORIGIN_ID $AEGIS_HEADER_TRACE" | tr a-z A-Z' \
    backend.host42.exec 2>"$TEST_TMP/exec.err" &
exec_pid=$!
at_exit kill "$exec_pid"
wait_for "the --exec subscription" subscribed "$a_sock" backend.host42.exec
expect_exit 0 "$send" --socket "$b_sock" --request --timeout 20s -H trace=t1 backend.host42.exec -m hello
expect_eq "$out" "HELLO SOC T1" "the reply"
expect_exit 1 "$send" --socket "$b_sock" --request --timeout 20s backend.host42.exec -m fail
expect_eq "$out" "bad request" "the error reply"
# A request nobody subscribes to is refused by the gateway at once (no_responders), well within
# its timeout; a plain message there is acknowledged as ever (not a request: nothing to answer).
started=$(date +%s%3N)
expect_error 4 "$send" --socket "$b_sock" --request --timeout 20s backend.host42.nobody -m hello
elapsed=$(($(date +%s%3N) - started))
expect_eq "$err" "aegis-send: error: no responders on backend.host42.nobody"
((elapsed < 5000)) || fail "no responders took $elapsed ms (timeout 20 s)"
check_passed
expect_exit 0 "$send" --socket "$b_sock" --wait-ack backend.host42.nobody -m plain
# Neither stays queued: the refused request is not kept as a dead letter.
queue_lacks() { ! "$AEGIS_BIN/aegis-queue" --socket "$1" ls --state all | grep -q "$2"; }
wait_for "the queue to hold nothing for backend.host42.nobody" queue_lacks "$b_sock" backend.host42.nobody
check_passed
# A reply the broker refuses (host42 may not publish to agent.other.*) is a warning; the replier goes on.
expect_error 5 "$send" --socket "$b_sock" --request --reply-to agent.other.x.reply --timeout 2s backend.host42.exec -m hello
wait_for "the replier's warning" grep -q "^aegis-sub: warning: no reply to " "$TEST_TMP/exec.err"
expect_exit 0 "$send" --socket "$b_sock" --request --timeout 20s -H trace=t2 backend.host42.exec -m again
expect_eq "$out" "AGAIN SOC T2" "the reply after a refused one"

# Two repliers on one broker: --replies 2 collects both.
for n in 1 2; do
    "$sub" --socket "$a_sock" --jobs 2 --exec "echo pong-$n" backend.host42.ping 2>/dev/null &
    at_exit kill $!
done
# Each attempt is a new request: replies to an earlier one are not counted (correlation).
for attempt in 1 2 3 4 5 6; do
    run "$send" --socket "$b_sock" --request --replies 2 --reply-to agent.host42.pings --timeout 3s backend.host42.ping -m ping
    [[ $status == 0 ]] && break
done
[[ $status == 0 ]] || fail "--replies 2 from two repliers"
check_passed
expect_eq "$(sort <<<"$out")" $'pong-1\npong-2' "two replies"

summary
