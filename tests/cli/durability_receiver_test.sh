#!/usr/bin/env bash
# Durable delivery, receiver side, with real processes and real kill -9 on 127.0.0.1: an agent
# publishes N messages (aegis-send -l) to a channel the backend broker keeps a durable cursor
# for; while aegis-sub --durable --drain writes them to a file, the receiving broker is killed
# with SIGKILL twice, at different points of the drain, and restarted, and the drain is resumed
# until everything has arrived.
#
# aegis-sub writes a message, then acknowledges its cursor position, with at most 16 acks
# waiting for the broker's commit; a kill inside that window replays those messages. aegis-sub
# names them on stderr when the broker goes away, so the test requires: lost = 0, and every
# duplicate is one aegis-sub announced (duplicated beyond the announced = 0).
# AEGIS_FAULT_N sets the message count (default 20000).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${AEGIS_FAULT_N:-20000}
export LC_ALL=C # sort, comm and join must agree on the order
started=$SECONDS

lines_of() { wc -l <"$1"; }

# --- keys, gateway, brokers -----------------------------------------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
timing=(--backoff-max 0.5 --heartbeat 0)
start_broker host42 "${timing[@]}"
a_sock=$broker_sock

# The receiving broker runs in the foreground, so its pid is the one to kill.
start_receiver() {
    start_broker --foreground soc "${timing[@]}"
    receiver_pid=$broker_pid
    b_sock=$broker_sock
}
start_receiver

# The durable cursor exists before the first message is published.
pattern='agent.host42.>'
expect_exit 0 "$sub" --socket "$b_sock" --durable night --drain -W 20 "$pattern"
expect_eq "$out" "" "a new cursor's first drain"

# --- the stream ------------------------------------------------------------------------------------

seq -f 'r-%.0f' 0 $((N - 1)) >"$TEST_TMP/sent"
"$send" --socket "$a_sock" -l agent.host42.tests <"$TEST_TMP/sent" 2>"$TEST_TMP/send.err" &
send_pid=$!
at_exit kill "$send_pid"

drained=$TEST_TMP/drained # "<message id> <payload>" per line, every drain appended
: >"$drained"
drains=0
start_drain() {
    drains=$((drains + 1))
    "$sub" --socket "$b_sock" --durable night --drain -F '%i %p' "$pattern" >>"$drained" 2>"$TEST_TMP/drain-$drains.err" &
    drain_pid=$!
}
distinct() { cut -d' ' -f2 "$drained" | sort -u | wc -l; }

# kill_receiver_at LINES: lets drains run until LINES are written, then kills the receiving
# broker under a running drain; the drain must end with the broker gone, not caught up.
kills=0
# The drains must keep moving, not be fast: on a loaded machine (a sanitizer build beside other
# work) a few lines a second is progress; 60 s without one more line is a stall.
kill_receiver_at() {
    local at=$1 deadline=$((SECONDS + 60)) before code seen=0 now
    while :; do
        now=$(lines_of "$drained")
        if ((now > seen)); then
            seen=$now
            deadline=$((SECONDS + 60))
        fi
        ((SECONDS < deadline)) || fail "the drain stalled at $now lines for 60 s (aiming at $at) in $drains drains"
        if ! kill -0 "$drain_pid" 2>/dev/null; then
            wait "$drain_pid"
            code=$?
            # Caught up with what had arrived so far: drain again once more has come.
            ((code == 0)) || fail "a drain failed (exit $code): $(cat "$TEST_TMP/drain-$drains.err")"
            sleep 0.2
            start_drain
            continue
        fi
        (($(lines_of "$drained") >= at)) && break
        sleep 0.02
    done
    before=$(lines_of "$drained")
    kill -KILL "$receiver_pid"
    wait "$receiver_pid" 2>/dev/null
    wait "$drain_pid"
    code=$?
    if ((code == 0)); then
        # It caught up just before the kill: the kill was not inside the stream; try again later.
        start_receiver
        start_drain
        return 1
    fi
    kills=$((kills + 1))
    echo "kill $kills: the receiving broker killed after $before lines drained, of $N ($((SECONDS - started)) s)"
    expect_eq "$code" 3 "the exit status of a drain whose broker was killed"
    expect_match "$(tail -1 "$TEST_TMP/drain-$drains.err")" "^aegis-sub: error: " "the drain's last stderr line"
    ((before < N)) || fail "kill $kills came after everything was drained; it proved nothing"
    check_passed
    start_receiver
    start_drain
}

start_drain
for at in $((N / 4)) $((N * 3 / 5)); do
    for ((try = 0; try < 5; try++)); do
        kill_receiver_at $((at + try * N / 20)) && break
    done
done
((kills == 2)) || fail "only $kills kill(s) landed inside a drain"

wait "$send_pid" || fail "aegis-send failed: $(cat "$TEST_TMP/send.err")"
echo "all $N queued by aegis-send ($((SECONDS - started)) s)"
check_passed

# Drain until every message has arrived; 60 s without one more line is a stall.
deadline=$((SECONDS + 60))
seen=0
while :; do
    now=$(lines_of "$drained")
    if ((now > seen)); then
        seen=$now
        deadline=$((SECONDS + 60))
    fi
    ((SECONDS < deadline)) || fail "only $(distinct) of $N messages arrived (no line for 60 s)"
    if ! kill -0 "$drain_pid" 2>/dev/null; then
        wait "$drain_pid" || fail "a drain failed: $(cat "$TEST_TMP/drain-$drains.err")"
        (($(distinct) < N)) || break
        sleep 0.2
        start_drain
    fi
    sleep 0.1
done
# One more drain: nothing is left, and a late duplicate would show up now.
run "$sub" --socket "$b_sock" --durable night --drain -W 20 -F '%i %p' "$pattern"
expect_eq "$status" 0 "the drain after everything arrived"
cat "$RUN_STDOUT" >>"$drained"

# --- counts -----------------------------------------------------------------------------------------

# The ids each drain named as written but not confirmed when its broker went away.
cat "$TEST_TMP"/drain-*.err | sed -n 's/^aegis-sub: warning: .* (cursor_seq [0-9-]*, ids\{0,1\} \([0-9a-f ]*\)) written but not confirmed.*/\1/p' |
    tr ' ' '\n' | grep . | sort >"$TEST_TMP/announced"
warnings=$(cat "$TEST_TMP"/drain-*.err | grep -c "^aegis-sub: warning: ")
announced=$(lines_of "$TEST_TMP/announced")
((warnings <= kills)) || fail "more warnings ($warnings) than kills ($kills)"
received=$(lines_of "$drained")
duplicated=$((received - $(distinct)))
# A payload printed twice must be the same message printed twice (one id, announced above), never
# a second message with the same payload: sort -u of "id payload" keeps one line per message.
payloads_under_two_ids=$(sort -u "$drained" | cut -d' ' -f2 | sort | uniq -d | wc -l)
id_copies=$((received - $(cut -d' ' -f1 "$drained" | sort -u | wc -l)))
lost=$(comm -23 <(sort -u "$TEST_TMP/sent") <(cut -d' ' -f2 "$drained" | sort -u) | wc -l)
# Each extra copy of an id must be matched by one announcement of it.
beyond=$(cut -d' ' -f1 "$drained" | sort | uniq -c | awk '$1 > 1 {print $2, $1 - 1}' |
    join -a1 - <(uniq -c "$TEST_TMP/announced" | awk '{print $2, $1}') |
    awk '{extra = $2 - ($3 == "" ? 0 : $3); if (extra > 0) n += extra} END {print n + 0}')
echo "receiver kill -9 x$kills: sent=$N received=$received duplicated=$duplicated announced=$announced" \
    "lost=$lost duplicated_unannounced=$beyond under_two_ids=$payloads_under_two_ids ($drains drains, $((SECONDS - started)) s)"
expect_eq "$lost" 0 "lost"
expect_eq "$beyond" 0 "duplicates aegis-sub did not announce"
expect_eq "$payloads_under_two_ids" 0 "payloads that arrived under two message ids"
expect_eq "$duplicated" "$id_copies" "payload duplicates against message-id duplicates"
((duplicated <= announced)) || fail "$duplicated payloads arrived twice, but aegis-sub announced only $announced"
check_passed
expect_eq "$(grep -c . "$drained")" "$received" "complete output lines"
# aegis-sub keeps at most 16 acks unanswered (the one being written included).
((announced <= 16 * kills)) || fail "$announced messages announced for $kills kills: more than the ack window"
check_passed

summary
