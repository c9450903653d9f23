#!/usr/bin/env bash
# The systemd units in packaging/systemd: each passes systemd-analyze verify, its offline
# security review scores an exposure of 2.0 or less, it is Type=notify with a reload that sends
# SIGHUP, and it runs as the system user that packaging/sysusers.d makes.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is missing (scripts/deps.sh installs systemd)"
    exit 77
fi

units=("$AEGIS_SOURCE_DIR"/packaging/systemd/*.service)
((${#units[@]} == 3)) || fail "expected 3 units in packaging/systemd, found ${#units[@]}"

mkdir "$TEST_TMP/units"
for unit in "${units[@]}"; do
    name=$(basename "$unit")
    # verify checks that ExecStart= is executable: point it at the built tools.
    sed "s|/usr/bin/aegis-|$AEGIS_BIN/aegis-|g" "$unit" >"$TEST_TMP/units/$name"
    # --man=no: the man pages of Documentation= are checked by docs_test.sh, installed or not.
    expect_exit 0 systemd-analyze verify --man=no "$TEST_TMP/units/$name"
    expect_eq "$err" "" "systemd-analyze verify $name"

    expect_exit 0 systemd-analyze security --offline=yes "$unit"
    score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$out")
    [[ -n $score ]] || fail "no exposure level for $name"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "$name: exposure $score, above 2.0"
    check_passed
    echo "$name: exposure $score"

    text=$(cat "$unit")
    expect_contains "$text" $'\nType=notify\n' "$name"
    expect_contains "$text" $'\nExecReload=/bin/kill -HUP $MAINPID\n' "$name"
    expect_contains "$text" $'\nUser=aegis\n' "$name"
    expect_contains "$text" $'\nNoNewPrivileges=yes\n' "$name"
    expect_contains "$text" $'\nCapabilityBoundingSet=\n' "$name"
    expect_contains "$text" $'\nMemoryDenyWriteExecute=yes\n' "$name"
    expect_contains "$text" $'\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n' "$name"
done

# The broker units keep their socket's directory across restarts and run in the foreground,
# ready once the socket serves; the system one serves the path the tools try last.
for name in aegis-connect.service aegis-connect@.service; do
    text=$(cat "$AEGIS_SOURCE_DIR/packaging/systemd/$name")
    expect_contains "$text" $'\nRuntimeDirectoryPreserve=yes\n' "$name"
    expect_contains "$text" "--foreground --no-wait" "$name"
    expect_contains "$text" "--socket-group aegis" "$name"
done
expect_contains "$(cat "$AEGIS_SOURCE_DIR/packaging/systemd/aegis-connect.service")" \
    "--socket /run/aegis/broker.sock" "aegis-connect.service"

# The system user, made in an empty root the way the package's postinst makes it.
command -v systemd-sysusers >/dev/null || fail "systemd-sysusers is missing (it comes with systemd-analyze)"
mkdir -p "$TEST_TMP/root/etc"
expect_exit 0 systemd-sysusers --root="$TEST_TMP/root" - <"$AEGIS_SOURCE_DIR/packaging/sysusers.d/aegis.conf"
expect_match "$(cat "$TEST_TMP/root/etc/passwd")" '(^|'$'\n'')aegis:x:[0-9]+:[0-9]+:[^:]*:/var/lib/aegis:/usr/sbin/nologin' \
    "the passwd entry"
expect_match "$(cat "$TEST_TMP/root/etc/group")" '(^|'$'\n'')aegis:x:' "the group entry"

summary
