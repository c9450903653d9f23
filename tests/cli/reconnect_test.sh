#!/usr/bin/env bash
# Reconnecting soon: a broker whose gateway says goodbye `shutting_down` (a restart) is back
# within about a second of the gateway's return, whatever its backoff (here 30 s to 60 s); and
# "reconnect now" (SIGUSR1 to the broker, aegis-connect --reconnect) makes a broker that is
# backing off after a gateway crash try at once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

now_ms() { date +%s%3N; }
# gw_ms N REGEX: the time (Unix ms) of the Nth gateway log line matching REGEX. Times are taken
# from the logs, so a slow tool polling the state does not count.
gw_ms() {
    grep -E "$2" "$gateway_log" | sed -n "$1p" | cut -d' ' -f1 | "$python" -c 'import sys,datetime
t = sys.stdin.read().strip().rstrip("Z")
print(int(datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))'
}
# waiting_long: backing off with the next attempt more than 15 s away (so it would not come by itself)
waiting_long() {
    in_state "$broker_sock" backing_off && (($(status_field "$broker_sock" next_attempt_ms) - $(now_ms) > 15000))
}

make_identities gateway host42
authorize agent host42
start_gateway
start_broker host42 --backoff-min 30 --backoff-max 60 --heartbeat 0
broker_pid=$(status_field "$broker_sock" pid)

# --- a gateway restart (SIGTERM: goodbye shutting_down), down for 1.5 s -----------------------------
kill -TERM "$gateway_pid"
wait "$gateway_pid"
sleep 1.5 # the gateway stays away a while (a restart that takes time), longer than one quick retry
start_gateway --listen "127.0.0.1:$gateway_port"
wait_for "the broker to reconnect after the restart" 20 connected "$broker_sock"
took=$(($(gw_ms 2 "authenticated id=host42") - $(gw_ms 2 "listening on")))
echo "reconnected ${took} ms after the gateway came back (backoff 30-60 s)"
((took < 2000)) || fail "the broker came back ${took} ms after the gateway restarted"
check_passed
expect_eq "$(status_field "$broker_sock" reconnects)" 1 "reconnects after the restart"

# --- a gateway crash (no goodbye): the broker backs off; SIGUSR1 makes it try at once ----------------
# Each phase says where it is on stdout (no paths), so that a failure's report shows how far it got.
crash_and_return() {
    local started
    started=$(now_ms)
    kill_gateway
    wait_for "the broker to back off for long" 120 waiting_long
    echo "$1: the broker backs off for long $(($(now_ms) - started)) ms after the crash"
    start_gateway --listen "127.0.0.1:$gateway_port"
    echo "$1: the gateway is back on its port"
}
crash_and_return "crash 1"
expect_eq "$(status_field "$broker_sock" state)" backing_off "the state before SIGUSR1"
next_ms=$(status_field "$broker_sock" next_attempt_ms)
kill -USR1 "$broker_pid"
wait_for "the broker to reconnect on SIGUSR1" 10 connected "$broker_sock"
echo "crash 1: reconnected on SIGUSR1"
# Connected well before its backoff would have let it try.
(($(gw_ms 3 "authenticated id=host42") < next_ms - 5000)) || fail "the broker did not reconnect before its backoff ended"
check_passed
expect_contains "$(cat "$broker_state_dir/broker.log")" "SIGUSR1 asked to reconnect; connecting to" "the broker's log"

# --- the same with aegis-connect --reconnect ---------------------------------------------------------
crash_and_return "crash 2"
next_ms=$(status_field "$broker_sock" next_attempt_ms)
expect_exit 0 "$connect" --reconnect --socket "$broker_sock"
expect_eq "$out" "the broker on $broker_sock is connecting now (it was backing_off)" "aegis-connect --reconnect"
wait_for "the broker to reconnect on --reconnect" 10 connected "$broker_sock"
echo "crash 2: reconnected on aegis-connect --reconnect"
(($(gw_ms 4 "authenticated id=host42") < next_ms - 5000)) || fail "the broker did not reconnect before its backoff ended"
check_passed
# Connected: nothing to do. No broker: exit 3.
expect_exit 0 "$connect" --reconnect --socket "$broker_sock"
expect_eq "$out" "the broker on $broker_sock is connected: nothing to do" "aegis-connect --reconnect while connected"
expect_error 3 "$connect" --reconnect --socket "$TEST_TMP/none.sock"
expect_error 2 "$connect" --reconnect --stop --socket "$broker_sock"
kill -0 "$broker_pid" || fail "the broker is gone"
check_passed

summary
