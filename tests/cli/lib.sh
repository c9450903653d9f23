# Shared helpers for the process tests (tests/cli/*_test.sh). Source it first:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   expect_exit 0 "$keygen" -q -f "$TEST_TMP/id"
#   expect_error 6 "$keygen" -y -f "$TEST_TMP/missing"
#   summary
#
# Gives:
#   TEST_TMP           a fresh directory, removed when the script exits
#   gateway connect send sub stat queue keygen   the built tools ($AEGIS_BIN/aegis-...)
#   python             the python3 interpreter
#   at_exit CMD...     runs CMD when the script exits (stop a daemon, ...), last registered first;
#                      then every background job the script still has is killed (by its pid)
#   skip REASON        prints "SKIP: <test>: REASON" and exits 77, which ctest reports as skipped.
#                      Only before the test has checked anything it could fail: a part of a test
#                      that cannot run here is a test of its own, never a skip in the middle.
#   require_root WHAT  skip unless running as root
#   part NAME          true when this run is part NAME of the script: a script with a line
#                      "# Parts: NAME..." is run by ctest once as a whole without the parts
#                      (part main is true) and once per part with --part NAME, so that a part
#                      that needs what is missing here is a skip ctest shows, not a silent gap
#   run CMD...         runs CMD; sets $status, $out (stdout) and $err (stderr, trailing newlines
#                      stripped); the raw streams stay in $RUN_STDOUT and $RUN_STDERR.
#                      Executables are killed after $RUN_TIMEOUT seconds (default 60; status 124).
#   expect_exit CODE CMD...     run, then require exit status CODE
#   expect_error CODE CMD...    expect_exit, plus exactly one stderr line "<tool>: error: ..."
#   expect_eq ACTUAL EXPECTED [WHAT]
#   expect_contains TEXT NEEDLE [WHAT]     expect_not_contains TEXT NEEDLE [WHAT]
#   expect_match TEXT ERE [WHAT]
#   expect_lines N TEXT [WHAT]             TEXT has exactly N lines
#   expect_mode OCTAL PATH                 e.g. expect_mode 600 "$key"
#   expect_no_crash                        the last run was not killed by a signal
#   fail MESSAGE...    print "FAIL: ..." with the last command's output and the tails of the
#                      logs in $TEST_TMP, and exit 1 (AEGIS_KEEP_FAILED=DIR keeps a copy of $TEST_TMP)
#   check_passed       count a check done by hand; summary prints the total
#   summary            print "PASS: <test> (<n> checks)"
#
# Waiting (never a fixed sleep standing in for a condition):
#   wait_for WHAT [SECONDS] CMD...   retries CMD (output discarded) every 0.1 s until it succeeds;
#                                    fails naming WHAT after SECONDS (default 30)
#   gone PID                         the process has exited (or is a zombie)
#   LATE_COPY_WINDOW                 seconds a copy of a message sent again can come after the
#                                    message itself: how long a duplicate count waits (below)
#   as_nobody CMD...                 runs CMD as the user nobody (root only)
#
# Keys, a gateway and brokers:
#   make_identities NAME...          $TEST_TMP/NAME and NAME.pub, comment NAME
#   fingerprint PUBFILE              SHA256:... of a key
#   authorize ROLE NAME [RULES]      appends "role=ROLE,id=NAME[,RULES] <NAME.pub>" to $TEST_TMP/authorized
#   start_gateway [--name NAME] [--listen ADDR] [--state-dir DIR] [--via CMD] [GATEWAY OPTIONS...]
#        starts aegis-gateway (identity $TEST_TMP/gateway, authorized file $TEST_TMP/authorized,
#        state DIR or $TEST_TMP/NAME-state, log $TEST_TMP/NAME.log; NAME defaults to "gateway") on a free
#        port of 127.0.0.1 (or ADDR; a port still held by the one before is tried again), and
#        returns once it listens (and its --admin endpoint, if asked for). --via runs it under a
#        prefix command (ip netns exec ...). Sets gateway_pid, gateway_port, gateway_url,
#        gateway_admin (the admin port or empty), gateway_log.
#   kill_gateway                     kill -9 the last gateway started, and reap it
#   restart_gateway                  kill_gateway, then start_gateway again on the same port with
#                                    the same options
#   start_broker [--foreground] [--url URL] [--socket PATH] [--state-dir DIR] [--via CMD] NAME
#                [CONNECT OPTIONS...]
#        starts aegis-connect with identity $TEST_TMP/NAME against $gateway_url, pinning
#        $TEST_TMP/gateway.pub (unless --accept-new or --backend-key is given), socket
#        $TEST_TMP/NAME.sock, state $TEST_TMP/NAME-state, and --backoff-min 0.2 --backoff-max 1
#        --timeout 20 unless given; returns once it is connected and stops it at exit.
#        --foreground keeps it a job of this script logging to $TEST_TMP/NAME.log (sets
#        broker_pid). Sets broker_sock and broker_state_dir.
#   start_agent_and_backend [CONNECT OPTIONS...]
#        identities gateway, host42 (agent) and soc (backend), a gateway, and a broker for each
#        (start_broker with the options); sets a_sock (host42's) and b_sock (soc's).
#   status_field SOCKET FIELD[.FIELD...]   one member of aegis-stat --json
#   in_state SOCKET STATE            the broker's session is in STATE (connected, backing_off, ...)
#   connected SOCKET                 the broker's session is up
#   subscribed SOCKET PATTERN        the broker's gateway subscriptions include PATTERN
#
# Other fixtures:
#   make_tls_pki                     with openssl, $TEST_TMP/pki (sets pki): a CA (ca.crt) and a
#                                    gateway certificate it signs for localhost and 127.0.0.1
#                                    (gw.crt, gw.key), valid one day
#   delivery_counts SENT RECEIVED LABEL   prints "LABEL: sent= received= duplicated= lost=" for two
#                                    files of payloads, one a line, and checks lost and duplicated are 0

set -uo pipefail

: "${AEGIS_BIN:?AEGIS_BIN must name the directory holding the built tools}"

TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
TEST_PART=main
if [[ ${1:-} == --part && -n ${2:-} ]]; then
    TEST_PART=$2
    TEST_NAME="$TEST_NAME: $2"
fi
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/aegis-${TEST_NAME%%:*}.XXXXXX") || {
    echo "FAIL: cannot make a temporary directory" >&2
    exit 1
}
RUN_STDOUT="$TEST_TMP/.run-stdout"
RUN_STDERR="$TEST_TMP/.run-stderr"
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
status=0
out=""
err=""
last_command=""
_checks=0
_exit_actions=()

at_exit() {
    _exit_actions+=("$(printf '%q ' "$@")")
}

_run_exit_actions() {
    local i pids
    for ((i = ${#_exit_actions[@]} - 1; i >= 0; i--)); do
        eval "${_exit_actions[i]}" >/dev/null 2>&1 || true
    done
    # Whatever this script started in the background and still runs: its own jobs, by pid.
    pids=$(jobs -p)
    if [[ -n $pids ]]; then
        kill -KILL $pids 2>/dev/null
        wait $pids 2>/dev/null
    fi
    rm -rf "$TEST_TMP"
}
trap _run_exit_actions EXIT

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

part() {
    [[ $TEST_PART == "$1" ]]
}

require_root() {
    [[ $(id -u) == 0 ]] || skip "$* needs root"
}

fail() {
    {
        echo "FAIL: $TEST_NAME: $*"
        if [[ -n $last_command ]]; then
            echo "  last command: $last_command"
            echo "  exit status:  $status"
            echo "  stdout: $(head -c 2000 "$RUN_STDOUT" 2>/dev/null)"
            echo "  stderr: $(head -c 2000 "$RUN_STDERR" 2>/dev/null)"
        fi
        _log_tails
    } >&2
    [[ -n ${AEGIS_KEEP_FAILED:-} ]] && cp -r "$TEST_TMP" "$AEGIS_KEEP_FAILED" 2>/dev/null
    exit 1
}

# The last lines of every log the daemons of this test wrote, for a failure's report.
_log_tails() {
    local log
    while IFS= read -r log; do
        echo "  --- ${log#"$TEST_TMP"/} (last lines):"
        tail -n 5 "$log" | sed 's/^/    /'
    done < <(find "$TEST_TMP" -maxdepth 3 -name '*.log' -type f 2>/dev/null | sort)
}

check_passed() {
    _checks=$((_checks + 1))
}

run() {
    last_command=$(printf '%q ' "$@")
    if [[ $(type -t "$1") == file ]]; then
        timeout --kill-after=5 "$RUN_TIMEOUT" "$@" >"$RUN_STDOUT" 2>"$RUN_STDERR"
    else
        "$@" >"$RUN_STDOUT" 2>"$RUN_STDERR"
    fi
    status=$?
    out=$(cat "$RUN_STDOUT")
    err=$(cat "$RUN_STDERR")
    return 0
}

expect_no_crash() {
    ((status < 124)) || fail "'$last_command' was killed or timed out (exit status $status)"
    check_passed
}

expect_exit() {
    local code=$1
    shift
    run "$@"
    [[ $status == "$code" ]] || fail "expected exit status $code"
    check_passed
}

expect_error() {
    local code=$1 tool
    tool=$(basename "$2")
    shift
    expect_exit "$code" "$@"
    expect_lines 1 "$err" "stderr"
    expect_match "$err" "^${tool}: error: " "stderr"
}

expect_eq() {
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
    check_passed
}

expect_contains() {
    [[ $1 == *"$2"* ]] || fail "${3:-output} does not contain '$2': '$1'"
    check_passed
}

expect_not_contains() {
    [[ $1 != *"$2"* ]] || fail "${3:-output} contains '$2': '$1'"
    check_passed
}

expect_match() {
    [[ $1 =~ $2 ]] || fail "${3:-output} does not match /$2/: '$1'"
    check_passed
}

expect_lines() {
    local count=0
    [[ -n $2 ]] && count=$(printf '%s\n' "$2" | wc -l)
    ((count == $1)) || fail "${3:-output}: expected $1 line(s), got $count: '$2'"
    check_passed
}

expect_mode() {
    local mode
    mode=$(stat -c %a "$2") || fail "cannot stat '$2'"
    [[ $mode == "$1" ]] || fail "'$2' has mode $mode, expected $1"
    check_passed
}

# --- waiting ------------------------------------------------------------------------------------

wait_for() {
    local what=$1 seconds=30 deadline
    shift
    if [[ ${1:-} =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        seconds=$1
        shift
    fi
    (($# > 0)) || fail "wait_for $what: no command to wait for"
    deadline=$((SECONDS + ${seconds%.*} + 1))
    while ((SECONDS < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out after $seconds s waiting for $what"
}

gone() {
    ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* ]]
}

# A broker sends a message again (a copy the receiving broker must drop) after a deferred batch's
# retry timer (kRetryDelay, 1 s, lib/broker/broker_impl.h) plus the queue's first retry backoff
# (at most RetryBackoff::base_ms, 1 s, lib/store/outbound_store.h), or right after a reconnect,
# whose full-jitter backoff is at most --backoff-max (1 s with start_broker's, 0.5 s or 1 s in
# the tests that set it). So a copy comes at most 2 s after the message; twice that on a loaded
# machine.
LATE_COPY_WINDOW=4

as_nobody() {
    if setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups true 2>/dev/null; then
        setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups "$@"
    else
        runuser -u nobody -- "$@"
    fi
}

# --- keys, the gateway, brokers -------------------------------------------------------------------

gateway=$AEGIS_BIN/aegis-gateway
connect=$AEGIS_BIN/aegis-connect
send=$AEGIS_BIN/aegis-send
sub=$AEGIS_BIN/aegis-sub
stat=$AEGIS_BIN/aegis-stat
queue=$AEGIS_BIN/aegis-queue
keygen=$AEGIS_BIN/aegis-keygen
python=/usr/bin/python3 # the system interpreter: tests run it as another user too
[[ -x $python ]] || python=$(command -v python3) || python=python3

make_identities() {
    local who
    for who in "$@"; do
        "$keygen" -q -f "$TEST_TMP/$who" -C "$who" >/dev/null 2>"$TEST_TMP/.keygen-err" ||
            fail "aegis-keygen could not make $who: $(cat "$TEST_TMP/.keygen-err")"
    done
}

fingerprint() {
    "$keygen" -l -f "$1" | cut -d' ' -f1
}

authorize() {
    echo "role=$1,id=$2${3:+,$3} $(cat "$TEST_TMP/$2.pub")" >>"$TEST_TMP/authorized"
}

gateway_pid=
gateway_port=
gateway_url=
gateway_admin=
gateway_log=
_gateway_name=
_gateway_host=
_gateway_state=
_gateway_via=()
_gateway_options=()

start_gateway() {
    local name=gateway listen=127.0.0.1:0 state= before admin_before attempt
    local -a via=() options=()
    while (($# > 0)); do
        case $1 in
            --name) name=$2; shift 2 ;;
            --listen) listen=$2; shift 2 ;;
            --state-dir) state=$2; shift 2 ;;
            --via) read -r -a via <<<"$2"; shift 2 ;;
            *) options+=("$1"); shift ;;
        esac
    done
    : "${state:=$TEST_TMP/$name-state}"
    _gateway_name=$name _gateway_state=$state _gateway_via=("${via[@]}") _gateway_options=("${options[@]}")
    gateway_log=$TEST_TMP/$name.log
    touch "$gateway_log"
    local host=${listen%:*}
    # A fixed port may still be held by the gateway killed just before: try again a while.
    for ((attempt = 0; attempt < 50; attempt++)); do
        before=$(grep -c "listening on $host:" "$gateway_log")
        admin_before=$(grep -c "admin endpoint on" "$gateway_log")
        "${via[@]}" "$gateway" --listen "$listen" --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
            --state-dir "$state" "${options[@]}" 2>>"$gateway_log" &
        gateway_pid=$!
        _gateway_serves() {
            (($(grep -c "listening on $host:" "$gateway_log") > before)) || return 1
            [[ " ${options[*]} " != *" --admin "* ]] || (($(grep -c "admin endpoint on" "$gateway_log") > admin_before))
        }
        while ! _gateway_serves && ! gone "$gateway_pid"; do sleep 0.05; done
        if _gateway_serves; then
            gateway_port=$(sed -n "s/.* listening on ${host//./\\.}:\([0-9][0-9]*\).*/\1/p" "$gateway_log" | tail -1)
            gateway_admin=$(sed -n 's/.* admin endpoint on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$gateway_log" | tail -1)
            [[ " ${options[*]} " == *" --admin "* ]] || gateway_admin=
            _gateway_host=$host
            [[ $host == *:* ]] && host="[$host]"
            gateway_url="ws://$host:$gateway_port/"
            [[ " ${options[*]} " == *" --tls-cert "* ]] && gateway_url="wss://$host:$gateway_port/"
            return 0
        fi
        wait "$gateway_pid" 2>/dev/null
        [[ $listen == *:0 ]] && break # not a busy port: a real failure
        sleep 0.2
    done
    fail "the gateway did not start on $listen: $(tail -n 5 "$gateway_log")"
}

kill_gateway() {
    kill -KILL "$gateway_pid" 2>/dev/null
    wait "$gateway_pid" 2>/dev/null
}

restart_gateway() {
    kill_gateway
    start_gateway --name "$_gateway_name" --listen "$_gateway_host:$gateway_port" --state-dir "$_gateway_state" \
        ${_gateway_via[@]+--via "${_gateway_via[*]}"} \
        "${_gateway_options[@]}"
}

broker_sock=
broker_state_dir=
broker_pid=

start_broker() {
    local foreground= url=$gateway_url via_text= name
    broker_sock= broker_state_dir=
    while (($# > 0)); do
        case $1 in
            --foreground) foreground=1; shift ;;
            --url) url=$2; shift 2 ;;
            --socket) broker_sock=$2; shift 2 ;;
            --state-dir) broker_state_dir=$2; shift 2 ;;
            --via) via_text=$2; shift 2 ;;
            *) break ;;
        esac
    done
    name=$1
    shift
    : "${broker_sock:=$TEST_TMP/$name.sock}" "${broker_state_dir:=$TEST_TMP/$name-state}"
    local -a via=() command=("$connect" "$url" --identity "$TEST_TMP/$name" --socket "$broker_sock"
        --state-dir "$broker_state_dir")
    [[ -n $via_text ]] && read -r -a via <<<"$via_text"
    local given=" $* "
    [[ $given == *" --accept-new "* || $given == *" --backend-key "* ]] ||
        command+=(--backend-key "$TEST_TMP/gateway.pub")
    [[ $given == *" --backoff-min "* ]] || command+=(--backoff-min 0.2)
    [[ $given == *" --backoff-max "* ]] || command+=(--backoff-max 1)
    [[ $given == *" --timeout "* ]] || command+=(--timeout 20)
    command+=("$@")
    if [[ -n $foreground ]]; then
        "${via[@]}" "${command[@]}" --foreground 2>>"$TEST_TMP/$name.log" &
        broker_pid=$!
        local deadline=$((SECONDS + 30))
        until connected "$broker_sock"; do
            gone "$broker_pid" && fail "broker $name exited: $(tail -n 5 "$TEST_TMP/$name.log")"
            ((SECONDS < deadline)) || fail "timed out waiting for broker $name to connect"
            sleep 0.1
        done
    else
        expect_exit 0 "${via[@]}" "${command[@]}"
    fi
    at_exit "$connect" --stop --socket "$broker_sock"
}

start_agent_and_backend() {
    make_identities gateway host42 soc
    authorize agent host42
    authorize backend soc
    start_gateway
    start_broker host42 "$@"
    a_sock=$broker_sock
    start_broker soc "$@"
    b_sock=$broker_sock
}

# admin_http METHOD PATH [BODY]: prints "STATUS BODY" from the gateway's admin endpoint on
# 127.0.0.1:$admin_port (default: the port start_gateway found for --admin).
admin_http() {
    "$python" - "${admin_port:-$gateway_admin}" "$@" <<'PY'
import sys, urllib.request, urllib.error
port, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
try:
    with urllib.request.urlopen(request, timeout=5) as r:
        print(r.status, r.read().decode(), end="")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(), end="")
PY
}

status_field() {
    "$stat" --json --socket "$1" | "$python" -c '
import functools, json, sys
print(functools.reduce(lambda o, k: o[k], sys.argv[1].split("."), json.load(sys.stdin)))' "$2"
}

in_state() {
    [[ $(status_field "$1" state 2>/dev/null) == "$2" ]]
}

connected() {
    in_state "$1" connected
}

subscribed() {
    "$stat" --json --socket "$1" | "$python" -c 'import json, sys
sys.exit(sys.argv[1] not in json.load(sys.stdin)["subscriptions"])' "$2"
}

make_tls_pki() {
    command -v openssl >/dev/null || fail "no openssl command (scripts/deps.sh installs it)"
    pki=$TEST_TMP/pki
    mkdir -m 700 "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Aegis test CA" -keyout "$pki/ca.key" \
        -out "$pki/ca.crt" >/dev/null 2>&1 || fail "openssl: cannot make the CA"
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$pki/gw.key" -out "$pki/gw.csr" \
        >/dev/null 2>&1 || fail "openssl: cannot make the request"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$pki/ext"
    openssl x509 -req -in "$pki/gw.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 1 \
        -extfile "$pki/ext" -out "$pki/gw.crt" >/dev/null 2>&1 || fail "openssl: cannot sign the certificate"
}

delivery_counts() {
    local sent received distinct duplicated lost
    sent=$(grep -c . "$1")
    received=$(grep -c . "$2")
    distinct=$(sort -u "$2" | grep -c .)
    duplicated=$((received - distinct))
    lost=$(comm -23 <(sort -u "$1") <(sort -u "$2") | grep -c .)
    echo "$3: sent=$sent received=$received duplicated=$duplicated lost=$lost"
    expect_eq "$lost" 0 "$3: lost"
    expect_eq "$duplicated" 0 "$3: duplicated"
}

summary() {
    ((_checks > 0)) || fail "no checks ran"
    echo "PASS: $TEST_NAME ($_checks checks)"
}
