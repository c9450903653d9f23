#!/usr/bin/env bash
# aegis-connect URL URL...: the gateways of one cluster, tried in a random order. Two gateways with
# one identity key (each with its own state here: what is checked is where the broker connects):
# the order is random (each URL comes first in some fresh starts); a URL where nothing listens is
# passed over; the gateway holding the session killed (-9), the
# broker moves to the other; the URLs on one line of the configuration file; the usage errors.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gateway host42
authorize agent host42

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
dead_url=ws://127.0.0.1:$(free_port)/

start_gateway --name g1
url1=$gateway_url pid1=$gateway_pid
start_gateway --name g2
url2=$gateway_url pid2=$gateway_pid
at_exit kill -TERM "$pid1" "$pid2"

# The usage errors: URLs of both schemes, a bad second URL, --check with two URLs.
expect_error 2 "$connect" "$url1" "wss://127.0.0.1:1/" --identity "$TEST_TMP/host42" \
    --backend-key "$TEST_TMP/gateway.pub" --socket "$TEST_TMP/bad.sock" --state-dir "$TEST_TMP/bad-state"
expect_contains "$err" "all ws:// or all wss://" "mixed schemes"
expect_error 2 "$connect" "$url1" "http://127.0.0.1:1/" --identity "$TEST_TMP/host42" \
    --backend-key "$TEST_TMP/gateway.pub" --socket "$TEST_TMP/bad.sock" --state-dir "$TEST_TMP/bad-state"
expect_error 2 "$connect" --check "$url1" "$url2" --identity "$TEST_TMP/host42" --backend-key "$TEST_TMP/gateway.pub"
expect_contains "$err" "--check tests one gateway URL at a time" "--check with two URLs"

# The order is drawn afresh at each start: with both gateways up the broker connects to the URL it
# tries first, and each comes first within 21 fresh starts (their own state each). A fair draw
# gives the same first URL 21 times in a row with probability 2 * 2^-21 = 2^-20 < 1e-6.
firsts=" "
for ((try = 1; try <= 21; try++)); do
    start_broker --url "$url1" --socket "$TEST_TMP/order.sock" --state-dir "$TEST_TMP/order-$try" host42 "$url2" \
        --heartbeat 0
    first=$(status_field "$broker_sock" url)
    expect_exit 0 "$connect" --stop --socket "$broker_sock"
    [[ $firsts == *" $first "* ]] || firsts+="$first "
    [[ $firsts == *" $url1 "* && $firsts == *" $url2 "* ]] && break
done
echo "first URLs seen in $try fresh starts:$firsts"
[[ $firsts == *" $url1 "* && $firsts == *" $url2 "* ]] || fail "21 fresh starts all connected first to$firsts"
check_passed

# A URL where nothing listens is passed over, whichever order is drawn.
start_broker --url "$dead_url" host42 "$url1" --heartbeat 0
expect_eq "$(status_field "$broker_sock" url)" "$url1" "connected to the gateway that listens"
expect_exit 0 "$connect" --stop --socket "$broker_sock"

# Both gateways up: the one holding the session killed, the broker moves to the other.
start_broker --url "$url1" host42 "$url2" --heartbeat 0
first=$(status_field "$broker_sock" url)
case $first in
    "$url1") victim=$pid1 other=$url2 ;;
    "$url2") victim=$pid2 other=$url1 ;;
    *) fail "connected to neither gateway: $first" ;;
esac
kill -KILL "$victim"
wait "$victim" 2>/dev/null
moved() { [[ $(status_field "$broker_sock" url) == "$other" ]] && connected "$broker_sock"; }
wait_for "the broker to move to $other" 20 moved
echo "connected to $first, killed it, moved to $other"
check_passed
expect_exit 0 "$send" --socket "$broker_sock" --wait-ack agent.host42.status -m "after the move"
expect_exit 0 "$connect" --stop --socket "$broker_sock"

# The configuration file names several URLs on its url line.
cat >"$TEST_TMP/connect.conf" <<EOF
url = $dead_url $other
identity = $TEST_TMP/host42
backend-key = $TEST_TMP/gateway.pub
EOF
expect_exit 0 "$connect" --check-config --config "$TEST_TMP/connect.conf"
expect_exit 0 "$connect" --config "$TEST_TMP/connect.conf" --socket "$TEST_TMP/conf.sock" \
    --state-dir "$TEST_TMP/conf-state" --backoff-min 0.2 --backoff-max 1 --timeout 20 --heartbeat 0
at_exit "$connect" --stop --socket "$TEST_TMP/conf.sock"
expect_eq "$(status_field "$TEST_TMP/conf.sock" url)" "$other" "the file's URLs: the one that listens"

summary
