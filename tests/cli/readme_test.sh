#!/usr/bin/env bash
# README.md's "A session by hand", run as written (taken from README.md here, so the two cannot
# drift): every command succeeds, the message is seen to arrive, nothing is left behind, and a
# second run in the same shell works as well as the first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"

# The first sh block after the heading.
snippet=$(awk '/^## A session by hand/ { section = 1; next }
               section && /^## / { exit }
               section && /^```sh$/ { block = 1; next }
               block && /^```$/ { exit }
               block { print }' "$AEGIS_SOURCE_DIR/README.md")
[[ -n $snippet ]] || fail "README.md has no sh block under '## A session by hand'"
check_passed

# As a reader pastes it: the tools on PATH, errors stopping the session. The scratch directories
# go under TEST_TMP, so that anything left behind is found (and removed when the test ends).
scratch=$TEST_TMP/scratch
mkdir -p "$scratch"
cat >"$TEST_TMP/session.sh" <<EOF
set -eo pipefail
$snippet
echo "--- second run"
$snippet
EOF
PATH=$AEGIS_BIN:$PATH TMPDIR=$scratch run bash "$TEST_TMP/session.sh"
[[ $status == 0 ]] || fail "the README session failed (exit status $status)"
check_passed

# The message arrives, in each run.
arrived=$(grep -c '^agent\.host42\.anomalies {"port":31337}$' "$RUN_STDOUT")
expect_eq "$arrived" 2 "lines showing the message arrive"
expect_contains "$out" "state:          connected" "aegis-stat output"
expect_not_contains "$err" "error" "stderr"

# It cleans up after itself: no scratch directory and no daemon left.
leftover=$(find "$scratch" -mindepth 1 -maxdepth 1)
expect_eq "$leftover" "" "what the session left in TMPDIR"
# Its daemons are known by the TMPDIR they inherited.
for pid in $(pgrep -u "$(id -u)" -f 'aegis-(gateway|connect)'); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "TMPDIR=$scratch"; then
        fail "a daemon of the session is still running: $(ps -o pid=,args= -p "$pid")"
    fi
done
check_passed

summary
