# Shared helpers for the process tests (tests/cli/*_test.sh). Source it first:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   expect_exit 0 "$AEGIS_BIN/aegis-keygen" -q -f "$TEST_TMP/id"
#   expect_error 6 "$AEGIS_BIN/aegis-keygen" -y -f "$TEST_TMP/missing"
#   summary
#
# Gives:
#   TEST_TMP           a fresh directory, removed when the script exits
#   at_exit CMD...     runs CMD when the script exits (stop a daemon, ...), last registered first
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
#   fail MESSAGE...    print "FAIL: ..." with the last command's output and exit 1
#   check_passed       count a check done by hand; summary prints the total
#   summary            print "PASS: <test> (<n> checks)"

set -uo pipefail

: "${AEGIS_BIN:?AEGIS_BIN must name the directory holding the built tools}"

TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/aegis-${TEST_NAME}.XXXXXX") || {
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
    local i
    for ((i = ${#_exit_actions[@]} - 1; i >= 0; i--)); do
        eval "${_exit_actions[i]}" >/dev/null 2>&1 || true
    done
    rm -rf "$TEST_TMP"
}
trap _run_exit_actions EXIT

fail() {
    {
        echo "FAIL: $TEST_NAME: $*"
        if [[ -n $last_command ]]; then
            echo "  last command: $last_command"
            echo "  exit status:  $status"
            echo "  stdout: $(head -c 2000 "$RUN_STDOUT" 2>/dev/null)"
            echo "  stderr: $(head -c 2000 "$RUN_STDERR" 2>/dev/null)"
        fi
    } >&2
    exit 1
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

summary() {
    ((_checks > 0)) || fail "no checks ran"
    echo "PASS: $TEST_NAME ($_checks checks)"
}
