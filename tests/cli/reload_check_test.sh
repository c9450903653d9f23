#!/usr/bin/env bash
# aegis-gateway --check-config beside a running gateway tells what a reload would change: the
# keys it would add, revoke, narrow or widen, the CAs it would trust or stop trusting, the keys
# and serials it would revoke or unrevoke; after the reload, that nothing would change. It reads
# the --revoked list and the channel controls as a start does, and reports their bad lines.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_identities gateway web1 web2 db1 ca
authorize agent web1
authorize agent db1
echo "@cert-authority $(cat "$TEST_TMP/ca.pub")" >>"$TEST_TMP/authorized"
revoked=$TEST_TMP/revoked
echo "serial 7" >"$revoked"
start_gateway --revoked "$revoked"
state=$TEST_TMP/gateway-state
expect_mode 600 "$state/authorized.applied"
expect_mode 600 "$state/revoked.applied"

check() {
    run "$gateway" --check-config --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
        --revoked "$revoked" --state-dir "$state" "$@"
}
check
expect_eq "$status" 0 "--check-config of the applied files"
expect_eq "$out" $'aegis-gateway: the configuration is fine\naegis-gateway: a reload would change nothing' \
    "--check-config of the applied files"

# Edit everything: web2 added, web1 removed, db1 narrowed, the CA gone, serial 7 unrevoked, db1's
# key and serial 9 revoked.
fp() { fingerprint "$TEST_TMP/$1.pub"; }
{
    echo "role=agent,id=db1,pub=agent.db1.> $(cat "$TEST_TMP/db1.pub")"
    echo "role=agent,id=web2 $(cat "$TEST_TMP/web2.pub")"
} >"$TEST_TMP/authorized"
printf 'serial 9\n%s\n' "$(cat "$TEST_TMP/db1.pub")" >"$revoked"
check
expect_eq "$status" 0 "--check-config of the edited files"
expect_eq "$out" "aegis-gateway: the configuration is fine
aegis-gateway: a reload would:
  narrow id=db1 $(fp db1): role=agent,id=db1 -> role=agent,id=db1,pub=agent.db1.>
  add role=agent,id=web2 $(fp web2)
  revoke role=agent,id=web1 $(fp web1)
  stop trusting CA $(fp ca) (its certificates are refused)
  revoke key $(fp db1) id=db1
  revoke serial 9
  unrevoke serial 7" "what a reload would change"
# Checking changed nothing: the running gateway still has the old files.
expect_contains "$(cat "$state/authorized.applied")" "id=web1" "the applied authorized file after a check"

# Reloaded: the copies follow, and nothing more would change.
kill -HUP "$gateway_pid"
wait_for "the gateway to reload" 20 grep -q "reloaded $TEST_TMP/authorized" "$gateway_log"
wait_for "the applied copy to follow" 20 grep -q "id=web2" "$state/authorized.applied"
check
expect_eq "$out" $'aegis-gateway: the configuration is fine\naegis-gateway: a reload would change nothing' \
    "--check-config after the reload"

# A widened grant, and the revocations taken back.
{
    echo "role=agent,id=db1 $(cat "$TEST_TMP/db1.pub")"
    echo "role=agent,id=web2 $(cat "$TEST_TMP/web2.pub")"
} >"$TEST_TMP/authorized"
echo "# nothing revoked" >"$revoked"
check
expect_contains "$out" "  widen id=db1 $(fp db1): role=agent,id=db1,pub=agent.db1.> -> role=agent,id=db1" "a widened grant"
expect_contains "$out" "  unrevoke key $(fp db1) id=db1" "an unrevoked key"
expect_contains "$out" "  unrevoke serial 9" "an unrevoked serial"

# The revocation list and the channel controls are read as a start reads them.
printf 'serial nine\n' >"$revoked"
printf 'not a pattern!\n' >"$TEST_TMP/controls"
expect_exit 6 "$gateway" --check-config --identity "$TEST_TMP/gateway" --authorized "$TEST_TMP/authorized" \
    --revoked "$revoked" --channel-controls "$TEST_TMP/controls" --state-dir "$state"
expect_contains "$err" "revoked:1:" "a bad revocation list"
expect_contains "$err" "controls:1:" "a bad channel controls file"
expect_not_contains "$out" "a reload would" "the report of a bad configuration"

summary
