#!/usr/bin/env bash
# Several gateways sharing their state in one Redis (aegis-gateway --redis), real processes on
# 127.0.0.1 and a redis-server started here (appendfsync always). Each check counts what was
# sent, received, duplicated and lost:
# (1) three gateways: a stream published through one reaches a subscriber on another;
# (2) a subscription acknowledged through one gateway routes a publish through another at once;
# (3) a broker away while messages are stored comes back through another gateway: all of them,
#     resumed;
# (5) one identity never holds two live sessions across the cluster: the older one is replaced;
# part bounds (9): past --inbox-max-messages the oldest are dropped and counted;
# part failover (4): kill -9 of the subscriber's gateway mid-stream: its broker (given two URLs)
#     moves to the other, lost 0, the copies sent again dropped at the broker and counted, within
#     the delivery window, and the sender's queue empty at the end;
# part redis_restart (6): kill -9 of Redis mid-stream and a restart on its append-only file
#     (appendfsync always): lost 0.
# part revoke (8): host42 removed from the authorized file and g1 alone sent SIGHUP: every gateway
#     reloads (a hint through Redis), and the one holding host42's session closes it within 1 s.
# part wait: with a replica and --redis-wait-replicas 1, a stream arrives whole; the replica
#     killed, a publish is not acknowledged; the replica back, it is, and arrives: lost 0.
# part sentinel (7): a primary, a replica and three redis-sentinel processes; three gateways
#     with --redis-sentinel (a dead sentinel first in the list) and --redis-wait-replicas 1;
#     kill -9 of the primary mid-stream: the sentinels promote the replica, every gateway
#     follows it, lost 0, and the subscriber sees the origin's sequences strictly increasing.
# Parts: bounds failover redis_restart revoke wait sentinel

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

redis_server=$(command -v redis-server) || skip "redis-server is not installed (scripts/deps.sh installs it)"
redis_cli=$(command -v redis-cli) || skip "redis-cli is not installed (it comes with redis-server)"

N=${AEGIS_CLUSTER_MESSAGES:-2000}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- Redis ----------------------------------------------------------------------------------------------
redis_port=$(free_port)
mkdir -p "$TEST_TMP/redis"
redis_up() { [[ $("$redis_cli" -p "$redis_port" ping 2>/dev/null) == PONG ]]; }
# start_redis [OPTION...]: on $redis_port, its append-only file in $TEST_TMP/redis (read again on
# a restart). A replica is served at once, not after the default 5 s wait for others.
start_redis() {
    "$redis_server" --port "$redis_port" --bind 127.0.0.1 --dir "$TEST_TMP/redis" --save '' --appendonly yes \
        --appendfsync always --repl-diskless-sync-delay 0 --logfile "$TEST_TMP/redis.log" "$@" &
    redis_pid=$!
    wait_for "redis-server" redis_up
}
stop_redis() {
    kill -KILL "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
}
at_exit stop_redis
start_redis
redis_url=redis://127.0.0.1:$redis_port/0

# The local-socket client of the process tests (tests/cli/local_client.py says how it counts).
client=$(dirname "${BASH_SOURCE[0]}")/local_client.py
# subscribe_ready SOCKET CHANNEL COUNT FILE: local_client.py subscribes in the background (sub_pid)
# and writes what it receives to FILE; it is subscribed when this returns.
subscribe_ready() {
    "$python" "$client" subscribe "$1" "$2" "$3" "$4" &
    sub_pid=$!
    wait_for "the subscriber of $2" test -e "$4.ready"
}
# delivered SOCKET: the messages the broker has given its local subscribers.
delivered() { status_field "$1" local.delivered; }
# A quarter of a stream of M messages has reached soc's subscriber.
quarter_delivered() { (($(delivered "$b_sock") >= M / 4)); }

make_identities gateway host42 soc audit
authorize agent host42
authorize backend soc
authorize backend audit

# start_gateways [OPTION...]: g1, g2 and g3 on one Redis (store_options says how they find it),
# their URLs and logs in url1.. and log1..
store_options=(--redis "$redis_url")
start_gateways() {
    local n
    for n in 1 2 3; do
        start_gateway --name "g$n" "${store_options[@]}" "$@"
        printf -v "url$n" '%s' "$gateway_url"
        printf -v "log$n" '%s' "$gateway_log"
        printf -v "pid$n" '%s' "$gateway_pid"
        at_exit kill -TERM "$gateway_pid"
    done
}

if part main; then
    # A URL that is not redis://..., and a Redis that could evict stored messages, are refused.
    expect_error 2 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
        --state-dir "$TEST_TMP/refused-state" --redis "http://127.0.0.1:$redis_port"
    expect_contains "$err" "--redis wants redis://HOST:PORT[/DB]" "a bad URL"
    "$redis_cli" -p "$redis_port" config set maxmemory-policy allkeys-lru >/dev/null
    expect_error 6 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
        --state-dir "$TEST_TMP/refused-state" --redis "$redis_url"
    expect_contains "$err" "maxmemory-policy allkeys-lru, which may evict stored messages" "an evicting Redis"
    "$redis_cli" -p "$redis_port" config set maxmemory-policy noeviction >/dev/null
    # --redis or --redis-sentinel, the latter with --redis-master; no sentinel answering fails.
    refused_gateway() {
        expect_error "$1" "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
            --state-dir "$TEST_TMP/refused-state" "${@:2}"
    }
    dead_sentinel=127.0.0.1:$(free_port)
    refused_gateway 2 --redis-sentinel "$dead_sentinel"
    expect_contains "$err" "--redis-sentinel needs --redis-master NAME" "a sentinel without a master name"
    refused_gateway 2 --redis-master aegis
    expect_contains "$err" "--redis-master goes with --redis-sentinel" "a master name without sentinels"
    refused_gateway 2 --redis "$redis_url" --redis-sentinel "$dead_sentinel" --redis-master aegis
    expect_contains "$err" "--redis and --redis-sentinel exclude each other" "both"
    refused_gateway 2 --redis "$redis_url" --redis-db 1
    expect_contains "$err" "--redis-db goes with --redis-sentinel" "--redis-db with --redis"
    refused_gateway 2 --redis-sentinel "127.0.0.1" --redis-master aegis
    expect_contains "$err" "--redis-sentinel wants HOST:PORT[,HOST:PORT...]" "a sentinel without a port"
    started=$SECONDS
    refused_gateway 1 --redis-sentinel "$dead_sentinel" --redis-master aegis
    expect_contains "$err" "cannot find the Redis master aegis within 5000 ms: no Redis sentinel answered" \
        "no sentinel answering"
    echo "no sentinel answering: refused after $((SECONDS - started)) s"

    start_gateways
    expect_contains "$(cat "$log1")" "state in Redis at $redis_url" "the gateway says where its state is"

    # --- (1) publish through g1, subscriber on g2 ---------------------------------------------------
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" soc --heartbeat 0
    b_sock=$broker_sock
    subscribe_ready "$b_sock" 'agent.host42.stream' "$N" "$TEST_TMP/1.received"
    "$python" "$client" publish "$a_sock" agent.host42.stream "$N" "$TEST_TMP/1.sent" ||
        fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/1.sent" "$TEST_TMP/1.received" "(1) published through g1, received through g2"
    expect_eq "$(grep -c . "$TEST_TMP/1.sent")" "$N" "(1) messages queued"

    # --- (2) subscribe through g3, then publish at once through g1 ----------------------------------
    start_broker --url "$url3" audit --heartbeat 0
    c_sock=$broker_sock
    subscribe_ready "$c_sock" 'agent.host42.burst' 200 "$TEST_TMP/2.received"
    "$python" "$client" publish "$a_sock" agent.host42.burst 200 "$TEST_TMP/2.sent" ||
        fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/2.sent" "$TEST_TMP/2.received" "(2) subscribed through g3, published at once through g1"
    expect_eq "$(grep -c . "$TEST_TMP/2.received")" 200 "(2) received"

    # --- (3) audit's broker away; it comes back through g2 --------------------------------------------
    # Its subscriber is attached when the broker stops: the identity's set keeps routing into its inbox.
    "$python" "$client" subscribe "$c_sock" 'agent.host42.burst' 1000000 "$TEST_TMP/3.first" &
    first_pid=$!
    wait_for "audit's subscriber" test -e "$TEST_TMP/3.first.ready"
    expect_exit 0 "$connect" --stop --socket "$c_sock"
    wait "$first_pid" || fail "audit's first subscriber failed"
    wait_for "g3 to see audit go" grep -q "disconnect id=audit" "$log3"
    M=50
    : >"$TEST_TMP/3.sent"
    for ((i = 0; i < M; i++)); do
        expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.burst -m "away-$i"
        echo "away-$i" >>"$TEST_TMP/3.sent"
    done
    start_broker --url "$url2" audit --heartbeat 0
    c_sock=$broker_sock
    "$python" "$client" subscribe "$c_sock" 'agent.host42.burst' "$M" "$TEST_TMP/3.received" &
    sub_pid=$!
    wait "$sub_pid" || fail "the subscriber after the return failed"
    delivery_counts "$TEST_TMP/3.sent" "$TEST_TMP/3.received" "(3) stored while away, received through another gateway"
    # Delivery resumed on g2 where audit had acknowledged on g3, not from the start.
    expect_match "$(grep "authenticated id=audit" "$log2")" "resume_point=[1-9][0-9]*$" "(3) resumed on g2"

    # --- (5) one live session per identity across the cluster -----------------------------------------
    # A second broker of soc through g3: g2's session of soc is replaced (goodbye), never both live.
    start_broker --url "$url3" --socket "$TEST_TMP/soc2.sock" --state-dir "$TEST_TMP/soc2-state" soc --heartbeat 0
    wait_for "g2 to replace its session of soc" grep -q "disconnect id=soc .*replaced" "$log2"
    echo "(5) soc's session on g2 replaced (goodbye replaced) when soc logged in through g3"
    expect_exit 0 "$connect" --stop --socket "$TEST_TMP/soc2.sock"
    check_passed
fi

if part bounds; then
    # --- (9) inbox bounds ------------------------------------------------------------------------------
    start_gateways --inbox-max-messages 10
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" audit --heartbeat 0
    c_sock=$broker_sock
    subscribe_ready "$c_sock" 'agent.host42.bounded' 1000000 "$TEST_TMP/9.first"
    expect_exit 0 "$connect" --stop --socket "$c_sock"
    wait "$sub_pid" || fail "the first subscriber failed"
    wait_for "g2 to see audit go" grep -q "disconnect id=audit" "$log2"
    : >"$TEST_TMP/9.sent"
    for ((i = 0; i < 25; i++)); do
        expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.bounded -m "b-$i"
        echo "b-$i" >>"$TEST_TMP/9.sent"
    done
    wait_for "the drop logged" grep -q "inbox of id=audit is full (--inbox-max-messages 10): dropped" "$log1"
    start_broker --url "$url3" audit --heartbeat 0
    c_sock=$broker_sock
    "$python" "$client" subscribe "$c_sock" 'agent.host42.bounded' 10 "$TEST_TMP/9.received" &
    sub_pid=$!
    wait "$sub_pid" || fail "the subscriber after the return failed"
    tail -n 10 "$TEST_TMP/9.sent" >"$TEST_TMP/9.kept"
    delivery_counts "$TEST_TMP/9.kept" "$TEST_TMP/9.received" "(9) the newest 10 of 25 kept"
    dropped=$(comm -23 <(sort -u "$TEST_TMP/9.sent") <(sort -u "$TEST_TMP/9.received") | grep -c .)
    echo "(9) sent=25 received=$(grep -c . "$TEST_TMP/9.received") dropped=$dropped"
    expect_eq "$dropped" 15 "(9) dropped, oldest first"
fi

if part failover; then
    # --- (4) kill -9 of the subscriber's gateway mid-stream -------------------------------------------
    M=$((N / 4))
    window=8 # deliver frames in flight per session: what may come twice after the kill
    start_gateways --replay-window "$window"
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" soc "$url3" --heartbeat 0
    b_sock=$broker_sock
    case $(status_field "$b_sock" url) in
        "$url2") victim=$pid2 other=$url3 ;;
        "$url3") victim=$pid3 other=$url2 ;;
        *) fail "soc is connected to neither g2 nor g3" ;;
    esac
    subscribe_ready "$b_sock" 'agent.host42.failover' "$M" "$TEST_TMP/4.received"
    "$python" "$client" publish "$a_sock" agent.host42.failover "$M" "$TEST_TMP/4.sent" --steady &
    pub_pid=$!
    wait_for "a quarter of the stream delivered" quarter_delivered
    kill -KILL "$victim"
    wait "$victim" 2>/dev/null
    moved() { [[ $(status_field "$b_sock" url) == "$other" ]] && connected "$b_sock"; }
    wait_for "soc's broker to move to $other" 20 moved
    wait "$pub_pid" || fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/4.sent" "$TEST_TMP/4.received" "(4) the subscriber's gateway killed mid-stream"
    expect_eq "$(grep -c . "$TEST_TMP/4.sent")" "$M" "(4) messages queued"
    # Copies the gateway sent again after the move: dropped by message id at the broker, counted.
    copies=$(status_field "$b_sock" local.duplicates)
    echo "(4) delivered again after the move and dropped at soc's broker: $copies (window $window frames)"
    # A frame is one batch, and the steady publisher sends 20 at a time.
    ((copies <= window * 20)) || fail "(4) $copies copies is more than the delivery window could hold"
    check_passed
    queue_empty() { (($(status_field "$a_sock" queue.waiting) + $(status_field "$a_sock" queue.in_flight) == 0)); }
    wait_for "host42's queue to empty" queue_empty
    echo "(4) host42's queue: waiting=$(status_field "$a_sock" queue.waiting) in_flight=$(status_field "$a_sock" queue.in_flight)"
fi

if part redis_restart; then
    # --- (6) kill -9 of Redis mid-stream, restarted on its append-only file -----------------------------
    M=$((N / 4))
    start_gateways
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" soc --heartbeat 0
    b_sock=$broker_sock
    subscribe_ready "$b_sock" 'agent.host42.restart' "$M" "$TEST_TMP/6.received"
    "$python" "$client" publish "$a_sock" agent.host42.restart "$M" "$TEST_TMP/6.sent" --steady &
    pub_pid=$!
    wait_for "a quarter of the stream delivered" quarter_delivered
    stop_redis
    echo "(6) Redis killed after $(delivered "$b_sock") deliveries"
    start_redis
    wait "$pub_pid" || fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/6.sent" "$TEST_TMP/6.received" "(6) Redis killed and restarted mid-stream"
    expect_eq "$(grep -c . "$TEST_TMP/6.sent")" "$M" "(6) messages queued"
    echo "(6) copies dropped at soc's broker: $(status_field "$b_sock" local.duplicates)"
    # The restarted server read back what the killed one had written.
    expect_contains "$(cat "$TEST_TMP/redis.log")" "DB loaded from append only file" "(6) Redis restarted from its file"
fi

if part revoke; then
    # --- (8) revocation on one gateway closes the session wherever it is -------------------------------
    start_gateways
    start_broker --url "$url2" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url3" soc --heartbeat 0
    b_sock=$broker_sock
    subscribe_ready "$b_sock" 'agent.host42.revoke' 20 "$TEST_TMP/8.received"
    "$python" "$client" publish "$a_sock" agent.host42.revoke 20 "$TEST_TMP/8.sent" || fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/8.sent" "$TEST_TMP/8.received" "(8) before the revocation"
    grep -v ",id=host42 " "$TEST_TMP/authorized" >"$TEST_TMP/authorized.new"
    mv "$TEST_TMP/authorized.new" "$TEST_TMP/authorized"
    started=$EPOCHREALTIME
    kill -HUP "$pid1"
    wait_for "g2 to close host42's session" 5 grep -q "revoked id=host42" "$log2"
    elapsed=$("$python" -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$started" "$EPOCHREALTIME")
    echo "(8) SIGHUP to g1; g2 closed host42's session after ${elapsed}s"
    "$python" -c "import sys; sys.exit(float(sys.argv[1]) > 1.0)" "$elapsed" ||
        fail "(8) g2 took ${elapsed}s to close the revoked session (more than 1 s)"
    check_passed
    expect_contains "$(cat "$log3")" "reloaded: re-reading the authorized file" "(8) g3 reloaded too"
    # Refused by whichever gateway it tries next: every one has read the file again.
    wait_for "host42's broker refused" in_state "$a_sock" refused
    # The goodbye says revoked; a later attempt is refused as unknown (the key left the file).
    expect_match "$(status_field "$a_sock" refusal.reason)" "^(revoked|unknown_identity)$" "(8) the refusal"
fi

if part wait; then
    # --- WAIT: a publish acknowledged once a replica has it --------------------------------------------
    expect_error 2 "$gateway" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
        --state-dir "$TEST_TMP/refused-state" --redis-wait-replicas 1
    expect_contains "$err" "--redis-wait-replicas goes with --redis" "(wait) without --redis"
    replica_port=$(free_port)
    mkdir -p "$TEST_TMP/replica"
    start_replica() {
        "$redis_server" --port "$replica_port" --bind 127.0.0.1 --dir "$TEST_TMP/replica" --save '' --appendonly yes \
            --appendfsync always --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$redis_port" \
            --logfile "$TEST_TMP/replica.log" &
        replica_pid=$!
        at_exit kill -KILL "$replica_pid"
        replicated() { [[ $("$redis_cli" -p "$redis_port" info replication) == *"connected_slaves:1"* ]]; }
        wait_for "the replica to follow" replicated
    }
    start_replica
    start_gateways --redis-wait-replicas 1 --redis-wait-timeout 300
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" soc --heartbeat 0
    b_sock=$broker_sock
    M=200
    subscribe_ready "$b_sock" 'agent.host42.wait' "$((M + 1))" "$TEST_TMP/w.received"
    "$python" "$client" publish "$a_sock" agent.host42.wait "$M" "$TEST_TMP/w.sent" || fail "the publishing client failed"
    kill -KILL "$replica_pid"
    wait "$replica_pid" 2>/dev/null
    # No replica: stored on the primary, but not acknowledged.
    expect_exit 5 "$send" --socket "$a_sock" --wait-ack --timeout 2 agent.host42.wait -m "m-$M"
    echo "m-$M" >>"$TEST_TMP/w.sent"
    expect_contains "$(cat "$log1")" "Redis replicas acknowledged" "(wait) the refusal logged"
    start_replica
    wait "$sub_pid" || fail "the subscribing client failed"
    delivery_counts "$TEST_TMP/w.sent" "$TEST_TMP/w.received" "(wait) with WAIT 1, the replica killed and back"
    queue_empty() { (($(status_field "$a_sock" queue.waiting) + $(status_field "$a_sock" queue.in_flight) == 0)); }
    wait_for "host42's queue to empty" queue_empty
fi

if part sentinel; then
    # --- (7) Sentinel failover mid-stream, with WAIT --------------------------------------------------
    # kill -9 of the primary rather than SENTINEL FAILOVER: it is the crash that WAIT must make
    # harmless, and the demoted primary of a SENTINEL FAILOVER keeps taking writes until the
    # sentinels reconfigure it (8 s or more later), which a loaded machine stretches further.
    redis_sentinel=$(command -v redis-sentinel) || skip "redis-sentinel is not installed (scripts/deps.sh installs it)"
    M=$((N / 4))
    window=8
    replica_port=$(free_port)
    mkdir -p "$TEST_TMP/replica"
    "$redis_server" --port "$replica_port" --bind 127.0.0.1 --dir "$TEST_TMP/replica" --save '' --appendonly yes \
        --appendfsync always --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$redis_port" \
        --logfile "$TEST_TMP/replica.log" &
    replica_pid=$!
    at_exit kill -KILL "$replica_pid"
    replicas_of() { [[ $("$redis_cli" -p "$1" info replication) == *"connected_slaves:1"* ]]; }
    wait_for "the replica to follow" replicas_of "$redis_port"
    # Three sentinels, quorum 2: the primary is down after 1 s without an answer. The gateways
    # are given a fourth, first, where nothing listens: they ask the next, and watch a live one.
    sentinels=127.0.0.1:$(free_port)
    sentinel_ports=()
    for n in 1 2 3; do
        port=$(free_port)
        printf '%s\n' "port $port" "bind 127.0.0.1" "dir $TEST_TMP" "logfile $TEST_TMP/sentinel$n.log" \
            "sentinel monitor aegis 127.0.0.1 $redis_port 2" "sentinel down-after-milliseconds aegis 1000" \
            "sentinel failover-timeout aegis 3000" >"$TEST_TMP/sentinel$n.conf"
        "$redis_sentinel" "$TEST_TMP/sentinel$n.conf" &
        at_exit kill -KILL "$!"
        sentinels+=,127.0.0.1:$port
        sentinel_ports+=("$port")
    done
    # sentinel_field PORT FIELD: one field of what the sentinel knows of the master aegis.
    sentinel_field() {
        "$redis_cli" -p "$1" sentinel master aegis 2>/dev/null | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
    }
    sentinels_ready() {
        local port
        for port in "${sentinel_ports[@]}"; do
            [[ $(sentinel_field "$port" num-slaves) == 1 && $(sentinel_field "$port" num-other-sentinels) == 2 ]] ||
                return 1
        done
    }
    wait_for "each sentinel to know the replica and the two others" sentinels_ready
    store_options=(--redis-sentinel "$sentinels" --redis-master aegis)
    start_gateways --redis-wait-replicas 1 --replay-window "$window"
    expect_contains "$(cat "$log1")" "state in Redis at redis://127.0.0.1:$redis_port/0, master aegis of the sentinels" \
        "(7) the gateway found the primary through the sentinels"
    start_broker --url "$url1" host42 --heartbeat 0
    a_sock=$broker_sock
    start_broker --url "$url2" soc --heartbeat 0
    b_sock=$broker_sock
    # The subscriber writes every message with its fields (the origin's sequence among them).
    "$python" "$client" subscribe "$b_sock" 'agent.host42.sentinel' "$M" "$TEST_TMP/7.received" --fields &
    sub_pid=$!
    wait_for "the subscriber of agent.host42.sentinel" test -e "$TEST_TMP/7.received.ready"
    "$python" "$client" publish "$a_sock" agent.host42.sentinel "$M" "$TEST_TMP/7.sent" --steady &
    pub_pid=$!
    wait_for "a quarter of the stream delivered" quarter_delivered
    stop_redis
    killed=$EPOCHREALTIME
    echo "(7) the primary killed after $(delivered "$b_sock") deliveries"
    follows_replica() { grep -q "redis master aegis is now 127.0.0.1:$replica_port" "$log1" "$log2" "$log3"; }
    wait_for "a gateway to follow the promoted replica" 30 follows_replica
    switched=$EPOCHREALTIME
    # The killed primary comes back as a replica of the new one (as the sentinels would make
    # it, later), so that WAIT 1 can be met again.
    start_redis --replicaof 127.0.0.1 "$replica_port"
    wait_for "the old primary to follow the new one" replicas_of "$replica_port"
    for log in "$log1" "$log2" "$log3"; do
        wait_for "every gateway to follow the promoted replica" 30 grep -q "redis master aegis is now" "$log"
    done
    "$python" -c "import sys; print('(7) a gateway on the new master %.1f s after the kill' % (float(sys.argv[2]) - float(sys.argv[1])))" \
        "$killed" "$switched"
    wait "$pub_pid" || fail "the publishing client failed"
    wait "$sub_pid" || fail "the subscribing client failed"
    # The payloads for the counts, and the origin's sequences in the order they came.
    "$python" - "$TEST_TMP/7.received" "$TEST_TMP/7.payloads" <<'PY' || fail "(7) host42's sequences went back"
import json, sys
last, back = {}, 0
with open(sys.argv[1]) as received, open(sys.argv[2], "w") as payloads:
    for line in received:
        message = json.loads(line)
        payloads.write(bytes.fromhex(message["payload"]).decode() + "\n")
        origin = message["origin_key"]
        if origin in last and message["sequence"] <= last[origin]:
            back += 1
        last[origin] = max(last.get(origin, 0), message["sequence"])
print("(7) sequences not above the one before, per origin: %d" % back)
sys.exit(1 if back else 0)
PY
    check_passed
    delivery_counts "$TEST_TMP/7.sent" "$TEST_TMP/7.payloads" "(7) the primary killed mid-stream, the replica promoted"
    expect_eq "$(grep -c . "$TEST_TMP/7.sent")" "$M" "(7) messages queued"
    # Copies come from publishes Redis stored but did not acknowledge (the master killed after
    # storing, or WAIT short of a replica until the old primary follows the new one): their
    # broker sends them again, and soc's broker drops them by message id.
    copies=$(status_field "$b_sock" local.duplicates)
    refused=$(cat "$log1" "$log2" "$log3" | grep -c "cannot store")
    echo "(7) copies dropped at soc's broker: $copies; group commits not acknowledged: $refused"
    # One line per change of master, on every gateway: the first names the promoted replica, and
    # each later one (a second failover, which the sentinels may make on a loaded machine) another
    # address than the line before it.
    for log in "$log1" "$log2" "$log3"; do
        changes=$(sed -n 's/.*redis master aegis is now \([^ ]*\).*/\1/p' "$log")
        expect_eq "$(head -n 1 <<<"$changes")" "127.0.0.1:$replica_port" "(7) the first master change logged in ${log##*/}"
        expect_eq "$(uniq <<<"$changes" | wc -l)" "$(wc -l <<<"$changes")" \
            "(7) master changes logged in ${log##*/}, none repeated"
    done
    queue_empty() { (($(status_field "$a_sock" queue.waiting) + $(status_field "$a_sock" queue.in_flight) == 0)); }
    wait_for "host42's queue to empty" queue_empty
fi

summary
