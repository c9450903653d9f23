#!/usr/bin/env bash
# aegis-sub --exec manages its handlers: each runs in a process group of its own that is ended
# when aegis-sub ends (SIGTERM, SIGHUP; SIGINT is ignored by a script's background jobs) or when the handler runs past --exec-timeout; a hung
# handler holds up the next request only until its timeout, and its requester gets an error
# reply naming the timeout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# no_process PID...: none of the processes exists any more (an orphan is reaped by init)
no_process() {
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 1; done
    return 0
}
now_ms() { date +%s%3N; }
has_lines() { [[ -f $1 && $(wc -l <"$1") == "$2" ]]; } # has_lines FILE N

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway
start_broker host42
a_sock=$broker_sock
start_broker soc
b_sock=$broker_sock

# --- killing aegis-sub (SIGTERM, then SIGHUP) ends the running handler and what it started ----------
# The handler writes its own pid (its process group's id) and its background child's pid.
for sig in TERM HUP; do
    pids=$TEST_TMP/pids-$sig
    "$sub" --socket "$a_sock" --exec "echo \$\$ >$pids; sleep 300 & echo \$! >>$pids; wait" \
        "backend.host42.kill$sig" 2>"$TEST_TMP/kill$sig.err" &
    sub_pid=$!
    at_exit kill -KILL "$sub_pid"
    wait_for "the kill$sig subscription" subscribed "$a_sock" "backend.host42.kill$sig"
    expect_exit 0 "$send" --socket "$b_sock" "backend.host42.kill$sig" -m go
    wait_for "the handler and its child to run" has_lines "$pids" 2
    group=$(head -1 "$pids")
    child=$(tail -1 "$pids")
    kill -0 "$child" 2>/dev/null || fail "the handler's child is not running before the kill"
    expect_eq "$(ps -o pgid= -p "$child" | tr -d ' ')" "$group" "the child's process group (the handler's own)"
    kill "-$sig" "$sub_pid"
    wait "$sub_pid"
    code=$?
    # Ended by the signal, as without handlers (128 + the signal's number).
    expect_eq "$code" "$((128 + $(kill -l "$sig")))" "aegis-sub's exit status after SIG$sig"
    wait_for "the handler and its child to be gone after SIG$sig" no_process "$group" "$child"
    pgrep -g "$group" >/dev/null && fail "processes are left in the handler's group $group: $(pgrep -g "$group" -a)"
    check_passed
done

# --- a hung handler: its group is ended at --exec-timeout, the requester gets an error reply, and the
# next request is answered without waiting for the hung one --------------------------------------------
hung=$TEST_TMP/hung
"$sub" --socket "$a_sock" --exec-timeout 1s \
    --exec "read -r x; if [ \"\$x\" = hang ]; then echo \$\$ >$hung; sleep 300 & echo \$! >>$hung; wait; fi; echo \"got \$x\"" \
    backend.host42.rpc 2>"$TEST_TMP/rpc.err" &
rpc_pid=$!
at_exit kill -KILL "$rpc_pid"
wait_for "the rpc subscription" subscribed "$a_sock" backend.host42.rpc
expect_exit 0 "$send" --socket "$b_sock" --request --timeout 20s backend.host42.rpc -m first
expect_eq "$out" "got first" "the reply of a handler that did not hang"

started=$(now_ms)
"$send" --socket "$b_sock" --request --timeout 20s backend.host42.rpc -m hang >"$TEST_TMP/hang.out" 2>"$TEST_TMP/hang.err" &
hang_pid=$!
wait_for "the hung handler to start" has_lines "$hung" 2
expect_exit 0 "$send" --socket "$b_sock" --request --timeout 20s backend.host42.rpc -m next
quick_ms=$(($(now_ms) - started))
expect_eq "$out" "got next" "the reply after the hung handler"
# --jobs 1: the next request waited for the hung handler's 1 s timeout (and its ending), not 300 s.
((quick_ms < 6000)) || fail "the request after a hung handler took $quick_ms ms (--exec-timeout 1s)"
check_passed
wait "$hang_pid"
expect_eq "$?" 1 "the hung request's exit status (an error reply)"
expect_eq "$(cat "$TEST_TMP/hang.err")" "aegis-send: error: the reply is an error: timed out after 1s (--exec-timeout)" \
    "the hung request's error"
expect_eq "$(cat "$TEST_TMP/hang.out")" "" "the hung request's reply payload"
wait_for "the hung handler's group to be gone" no_process "$(head -1 "$hung")" "$(tail -1 "$hung")"
expect_contains "$(cat "$TEST_TMP/rpc.err")" "timed out after 1s (--exec-timeout); its process group was ended" \
    "aegis-sub's warning"
kill -0 "$rpc_pid" 2>/dev/null || fail "aegis-sub ended after a handler timed out"
check_passed

# --exec-timeout without --exec is a usage error.
expect_error 2 "$sub" --socket "$a_sock" --exec-timeout 5s backend.host42.rpc
expect_contains "$err" "--exec-timeout needs --exec"

summary
