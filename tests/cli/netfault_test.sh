#!/usr/bin/env bash
# Network faults between an agent's broker and the gateway, with real processes in network
# namespaces of their own joined by a veth pair (192.0.2.0/30, inside the namespaces only): the
# gateway and the backend broker (soc) in one, the agent broker (host42) in the other. While
# messages flow both ways (aegis-send -l into the agent broker, read by aegis-sub on the backend
# broker, and the other way), each fault is put on the link and then taken off:
#   loss       random drop of 10% of the packets each way (netem, else iptables statistic);
#   delay      netem delay, else a tbf rate limit with a deep queue (queueing delay under load);
#   reorder    netem, else a random quarter of the packets sent through a narrow htb class
#              (iptables CLASSIFY); TCP's own out-of-order counter must show it happened;
#   partition  every packet dropped, in the middle of a stream, until the agent's broker has
#              lost its session and tried to connect again; then healed: the broker must
#              reconnect by itself and send what was queued meanwhile.
# Each fault prints one line of counts: sent, received, duplicated and lost, for each direction;
# lost and duplicated must be 0, and after the partition aegis-stat must show the agent broker
# connected again with reconnects >= 1.
#
# The session fails in a partition when TCP gives up retransmitting or when the WebSocket
# keep-alive (a fixed 60 s, not an option of the daemons) expires, whichever comes first. To
# keep the test short, the partition lowers net.ipv4.tcp_retries2 in the agent's namespace
# (the session then fails after about 10 s). AEGIS_NETFAULT_KEEPALIVE=1 leaves it alone, so
# that only the keep-alive ends the session (the partition then lasts over a minute).
# AEGIS_NETFAULT_N sets the message count up per fault (default 2000; a quarter of it down).
#
# Needs root, iproute2, and netem or a working iptables (and htb) for every fault; elsewhere it
# is skipped (lib.sh's skip), whole: no fault is left out of a run that passes.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root "making network namespaces"
{ command -v ip && command -v tc; } >/dev/null || skip "no ip or tc (iproute2)"

N=${AEGIS_NETFAULT_N:-2000}
M=$((N / 4))
up_counts=
down_counts=


# --- the namespaces and the link ----------------------------------------------------------------------

tag=$$
gw_ns=aegis-nf-gw-$tag
ag_ns=aegis-nf-ag-$tag
gw_if=nfg$tag
ag_if=nfa$tag
gw_ip=192.0.2.1
ag_ip=192.0.2.2
in_gw() { ip netns exec "$gw_ns" "$@"; }
in_ag() { ip netns exec "$ag_ns" "$@"; }
# Whatever still runs in a namespace is ours: stopped by pid before the namespace goes.
kill_in() { ip netns pids "$1" 2>/dev/null | xargs -r kill -KILL; }

ip netns add "$gw_ns" 2>/dev/null || skip "cannot make a network namespace here"
at_exit ip netns del "$gw_ns"
at_exit kill_in "$gw_ns"
ip netns add "$ag_ns" || fail "cannot make a second network namespace"
at_exit ip netns del "$ag_ns"
at_exit kill_in "$ag_ns"
veth_error=$(ip link add "$gw_if" netns "$gw_ns" type veth peer name "$ag_if" netns "$ag_ns" 2>&1) ||
    skip "cannot make a veth pair here: $veth_error"
in_gw ip addr add "$gw_ip/30" dev "$gw_if"
in_ag ip addr add "$ag_ip/30" dev "$ag_if"
for ns in "$gw_ns" "$ag_ns"; do
    ip -n "$ns" link set lo up
done
in_gw ip link set "$gw_if" up
in_ag ip link set "$ag_if" up

have_netem=
if in_ag tc qdisc add dev "$ag_if" root netem delay 1ms 2>/dev/null; then
    have_netem=1
    in_ag tc qdisc del dev "$ag_if" root
fi
# The packet filter of the agent's namespace: whichever iptables backend works in this kernel.
fw=
for candidate in iptables iptables-legacy iptables-nft; do
    command -v "$candidate" >/dev/null || continue
    if in_ag "$candidate" -w -A OUTPUT -o "$ag_if" -m statistic --mode random --probability 0.5 -j ACCEPT 2>/dev/null; then
        in_ag "$candidate" -w -D OUTPUT -o "$ag_if" -m statistic --mode random --probability 0.5 -j ACCEPT
        fw=$candidate
        break
    fi
done
# Every fault needs netem, or the packet filter (loss, reorder) and htb (reorder) instead.
have_htb=
if in_ag tc qdisc add dev "$ag_if" root handle 1: htb default 1 2>/dev/null; then
    have_htb=1
    in_ag tc qdisc del dev "$ag_if" root
fi
[[ -n $have_netem || -n $fw ]] || skip "neither netem nor a working iptables here: no way to drop packets"
[[ -n $have_netem || (-n $have_htb && -n $fw) ]] || skip "neither netem nor htb with a working iptables here: no way to reorder packets"
echo "link: veth $gw_ip <-> $ag_ip; netem: ${have_netem:+yes}${have_netem:-no}; packet filter: ${fw:-none}"

# ping_summary COUNT INTERVAL: "loss X%, rtt min/avg/max A/B/C ms" from the agent's side of the link.
ping_summary() {
    command -v ping >/dev/null || {
        echo "no ping to measure with"
        return
    }
    in_ag ping -n -q -c "$1" -i "$2" -W 2 "$gw_ip" 2>&1 |
        sed -n -e 's/.* \([0-9.]*%\) packet loss.*/loss \1/p' -e 's|^rtt min/avg/max[^=]*= \([0-9.]*/[0-9.]*/[0-9.]*\)/.*|rtt min/avg/max \1 ms|p' |
        paste -sd, - | sed 's/,/, /'
}

# --- keys, the gateway, the two brokers, one subscriber each -------------------------------------

make_identities gateway host42 soc
authorize agent host42
authorize backend soc
start_gateway --via in_gw --listen "$gw_ip:0"
glog=$gateway_log
# Short backoff so a healed link is used at once (start_broker's); an agent heartbeat every
# second keeps data in flight, so a partition is noticed even between streams.
start_broker --via in_gw soc --heartbeat 0
b_sock=$broker_sock
start_broker --via in_ag host42 --heartbeat 1
a_sock=$broker_sock
agent_state=$broker_state_dir
state_is_not() { ! in_state "$@"; }

up_channel=agent.host42.netfault
down_channel=backend.host42.netfault
"$sub" --socket "$b_sock" "$up_channel" >"$TEST_TMP/up.out" 2>"$TEST_TMP/up.err" &
at_exit kill $!
"$sub" --socket "$a_sock" "$down_channel" >"$TEST_TMP/down.out" 2>"$TEST_TMP/down.err" &
at_exit kill $!
wait_for "the backend's subscription" 20 subscribed "$b_sock" "$up_channel"
wait_for "the agent's subscription" 20 subscribed "$a_sock" "$down_channel"
echo "baseline: $(ping_summary 5 0.2)"

# --- streams and counts ---------------------------------------------------------------------------

# stream SOCKET CHANNEL PREFIX COUNT [LINES_PER_TENTH]: PREFIX-0 ... PREFIX-(COUNT-1) through one
# aegis-send -l, at most LINES_PER_TENTH lines every 0.1 s when given (a stream, not one burst).
stream() {
    local sock=$1 channel=$2 prefix=$3 count=$4 pace=${5:-0} i
    for ((i = 0; i < count; i++)); do
        echo "$prefix-$i"
        if ((pace > 0 && i % pace == pace - 1)); then sleep 0.1; fi
    done | "$send" --socket "$sock" -l "$channel" 2>>"$TEST_TMP/send.err"
}
# distinct PREFIX FILE: how many different PREFIX-i lines FILE holds.
distinct() { grep -E "^$1-[0-9]+\$" "$2" | sort -u | wc -l; }
all_there() { (($(distinct "$1" "$2") >= $3)); }
# count VAR DIRECTION PREFIX SENT FILE: sets VAR to "DIRECTION sent=... received=...
# duplicated=... lost=..." and checks that nothing was lost or doubled.
count() {
    local -n counts=$1
    local direction=$2 prefix=$3 sent=$4 file=$5 received unique lost
    received=$(grep -cE "^$prefix-[0-9]+\$" "$file")
    unique=$(distinct "$prefix" "$file")
    lost=$(comm -23 <(seq -f "$prefix-%.0f" 0 $((sent - 1)) | sort) <(grep -E "^$prefix-[0-9]+\$" "$file" | sort -u) | wc -l)
    counts="$direction sent=$sent received=$received duplicated=$((received - unique)) lost=$lost"
    ((lost == 0)) || fail "$prefix: $lost message(s) lost ($counts)"
    ((received == unique)) || fail "$prefix: $((received - unique)) message(s) delivered twice ($counts)"
    check_passed
}
# run_streams NAME: N messages up and M down at once, the link measured with ping meanwhile
# ($measured); waits until each arrived, then a moment more so a late duplicate would show.
# Sets $up_counts and $down_counts.
run_streams() {
    local name=$1 up_pid down_pid
    stream "$a_sock" "$up_channel" "$name-up" "$N" &
    up_pid=$!
    stream "$b_sock" "$down_channel" "$name-down" "$M" &
    down_pid=$!
    measured=$(ping_summary 50 0.04)
    wait "$up_pid" || fail "$name: aegis-send -l into the agent broker failed: $(tail -2 "$TEST_TMP/send.err")"
    wait "$down_pid" || fail "$name: aegis-send -l into the backend broker failed: $(tail -2 "$TEST_TMP/send.err")"
    finish_streams "$name"
}
finish_streams() {
    local name=$1
    wait_for "$name: every message up" 60 all_there "$name-up" "$TEST_TMP/up.out" "$N"
    wait_for "$name: every message down" 60 all_there "$name-down" "$TEST_TMP/down.out" "$M"
    sleep "$LATE_COPY_WINDOW" # a copy sent again would be here by now
    count up_counts up "$name-up" "$N" "$TEST_TMP/up.out"
    count down_counts down "$name-down" "$M" "$TEST_TMP/down.out"
}
# report NAME HOW STARTED: the one line per fault.
report() {
    printf '%-9s %s: %s; %s; %.1f s\n' "$1" "$2" "$up_counts" "$down_counts" "$(since "$3")"
}
now() { date +%s.%N; }
since() { "$python" -c 'import sys,time; print(time.time() - float(sys.argv[1]))' "$1"; }
# on_both CMD...: a tc command for each end of the link ("DEV" is replaced by the device).
on_both() {
    in_ag "${@//DEV/$ag_if}" && in_gw "${@//DEV/$gw_if}"
}

# --- loss --------------------------------------------------------------------------------------------

started=$(now)
if [[ -n $have_netem ]]; then
    on_both tc qdisc add dev DEV root netem loss 10% || fail "cannot add netem loss"
    how="netem loss 10% each way"
elif [[ -n $fw ]]; then
    for rule in "OUTPUT -o" "INPUT -i"; do
        # shellcheck disable=SC2086 # the chain and the interface option
        in_ag "$fw" -w -A $rule "$ag_if" -m statistic --mode random --probability 0.1 -j DROP ||
            fail "cannot add the loss rules"
    done
    how="$fw statistic drop 10% each way"
fi
run_streams loss
report loss "($how; ping under load $measured)" "$started"
if [[ -n $have_netem ]]; then
    on_both tc qdisc del dev DEV root
else
    in_ag "$fw" -w -F INPUT && in_ag "$fw" -w -F OUTPUT
fi

# --- delay ----------------------------------------------------------------------------------------------

started=$(now)
if [[ -n $have_netem ]]; then
    on_both tc qdisc add dev DEV root netem delay 100ms 20ms || fail "cannot add netem delay"
    how="netem delay 100 ms +- 20 ms each way"
else
    # No netem: a narrow link with a deep queue delays what waits behind a stream.
    on_both tc qdisc add dev DEV root tbf rate 1mbit burst 4kb latency 1s || fail "cannot add tbf"
    how="tbf 1 Mbit/s, 1 s queue, each way"
fi
run_streams delay
report delay "($how; ping under load $measured)" "$started"
on_both tc qdisc del dev DEV root

# --- reorder ----------------------------------------------------------------------------------------------

# Segments TCP received out of order in NAMESPACE since it was made (the kernel's counter).
out_of_order() { ip netns exec "$1" nstat -saz TcpExtTCPOFOQueue | awk '$1 == "TcpExtTCPOFOQueue" { print $2 }'; }
reordered_before=$(($(out_of_order "$gw_ns") + $(out_of_order "$ag_ns")))
started=$(now)
if [[ -n $have_netem ]]; then
    on_both tc qdisc add dev DEV root netem delay 20ms reorder 25% 50% || fail "cannot add netem reorder"
    how="netem: 25% of the packets sent at once, the rest 20 ms late"
else
    on_both tc qdisc add dev DEV root handle 1: htb default 1 || fail "cannot add htb"
    # No netem: a quarter of the packets, picked at random by the packet filter, take a narrow
    # class of their own, so they arrive behind packets sent after them.
    on_both tc class add dev DEV parent 1: classid 1:1 htb rate 1gbit 2>/dev/null || fail "cannot add the fast class"
    on_both tc class add dev DEV parent 1: classid 1:2 htb rate 2mbit ceil 2mbit || fail "cannot add the slow class"
    in_ag "$fw" -w -t mangle -A POSTROUTING -o "$ag_if" -m statistic --mode random --probability 0.25 \
        -j CLASSIFY --set-class 1:2 || fail "cannot classify the agent's packets"
    in_gw "$fw" -w -t mangle -A POSTROUTING -o "$gw_if" -m statistic --mode random --probability 0.25 \
        -j CLASSIFY --set-class 1:2 || fail "cannot classify the gateway's packets"
    how="htb: 25% of the packets each way through a 2 Mbit/s class"
fi
# Reordering needs segments in flight together; a slow build (the sanitizers) may send few
# at a time, so the streams go again, up to three rounds, until TCP has seen one out of order.
rounds=0 reordered=0
while ((reordered == 0 && rounds < 3)); do
    rounds=$((rounds + 1))
    run_streams "reorder$rounds"
    reordered=$(($(out_of_order "$gw_ns") + $(out_of_order "$ag_ns") - reordered_before))
done
((reordered > 0)) || fail "reorder: TCP saw no segment out of order in $rounds rounds; the fault did not reorder"
check_passed
report reorder "($how; $reordered segments received out of order in $rounds round(s); ping under load $measured)" "$started"
on_both tc qdisc del dev DEV root
if [[ -z $have_netem ]]; then
    in_ag "$fw" -w -t mangle -F POSTROUTING && in_gw "$fw" -w -t mangle -F POSTROUTING
fi

# --- partition ---------------------------------------------------------------------------------------------

reconnects_before=$(status_field "$a_sock" reconnects)
started=$(now)
stream "$a_sock" "$up_channel" partition-up "$N" 50 &
up_pid=$!
stream "$b_sock" "$down_channel" partition-down "$M" 12 &
down_pid=$!
wait_for "partition: the stream to start" 30 all_there partition-up "$TEST_TMP/up.out" $((N / 5))
# Cut the link in the middle of the stream: drop everything, both ways.
partition() { # partition on|off
    if [[ -n $fw ]]; then
        local op=-I
        [[ $1 == off ]] && op=-D
        in_ag "$fw" -w "$op" INPUT -i "$ag_if" -j DROP && in_ag "$fw" -w "$op" OUTPUT -o "$ag_if" -j DROP
    else
        local updown=down
        [[ $1 == off ]] && updown=up
        in_ag ip link set "$ag_if" "$updown" && in_gw ip link set "$gw_if" "$updown"
    fi
}
retries2=$(in_ag sysctl -n net.ipv4.tcp_retries2)
[[ -z ${AEGIS_NETFAULT_KEEPALIVE:-} ]] && in_ag sysctl -qw net.ipv4.tcp_retries2=4
blog=$agent_state/broker.log
attempts_at_cut=$(grep -c "session connecting" "$blog")
partition on || fail "cannot cut the link"
cut_at=$(now)
at_partition=$(distinct partition-up "$TEST_TMP/up.out")
((at_partition < N)) || fail "partition: the stream was over before the link was cut"
wait_for "partition: the agent broker to lose its session" 100 state_is_not "$a_sock" connected
noticed=$(since "$cut_at")
# The stream goes on into the local queue and the gateway's inbox meanwhile.
wait "$up_pid" || fail "partition: aegis-send -l into the agent broker failed"
wait "$down_pid" || fail "partition: aegis-send -l into the backend broker failed"
cause=$(grep "session backing_off" "$blog" | tail -1 | sed 's/.*session backing_off: *//')
# A while longer, so that a reconnect attempt meets the cut link too.
attempts_after() { (($(grep -c "session connecting" "$blog") > $1)); }
wait_for "partition: a reconnect attempt" 30 attempts_after "$attempts_at_cut"
partition off || fail "cannot heal the link"
in_ag sysctl -qw net.ipv4.tcp_retries2="$retries2"
healed=$(since "$cut_at")
wait_for "partition: the agent broker to reconnect" 60 connected "$a_sock"
reconnected=$(since "$cut_at")
finish_streams partition
reconnects=$(status_field "$a_sock" reconnects)
state=$(status_field "$a_sock" state)
expect_eq "$state" connected "the agent broker's state after the partition"
((reconnects >= 1 && reconnects > reconnects_before)) ||
    fail "partition: aegis-stat shows reconnects=$reconnects (before: $reconnects_before)"
check_passed
printf -v how 'cut after %d/%d up; session lost after %.1f s (%s), healed at %.1f s, reconnected at %.1f s; reconnects=%d, state=%s' \
    "$at_partition" "$N" "$noticed" "$cause" "$healed" "$reconnected" "$reconnects" "$state"
report partition "($how)" "$started"
echo "redelivered and dropped as duplicates by the receiving brokers:" \
    "backend $(status_field "$b_sock" local.duplicates), agent $(status_field "$a_sock" local.duplicates)"

summary
