#!/usr/bin/env bash
# Identities certified by an operator CA: the gateway's authorized file trusts a CA
# ("@cert-authority" line) instead of listing each key. A host with a certificate from that CA
# connects and its messages flow; explicit key lines keep working beside it; an expired or
# not-yet-valid certificate is refused with its own reason and the dates (exit 4); a certificate
# of an untrusted CA is refused (exit 4); a certificate beside the wrong key stops aegis-connect
# at start (exit 6). A key rolled over: old and new certified keys of one id connected side by
# side, the old one revoked (--revoked, SIGHUP) is refused and closed while the new one stays;
# a revoked serial refuses its certificate; a revocation list with a bad line stops the start and
# is not applied on SIGHUP. Dropping the CA line and reloading revokes the certified session.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stat_has() { "$stat" --socket "$1" --json 2>/dev/null | grep -Eq "$2"; }

make_identities gateway ca other-ca host42 host42-new soc web7 web8 web9
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I host42 -r agent -V -1h:+1h "$TEST_TMP/host42.pub"
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I host42 -r agent -z 4242 "$TEST_TMP/host42-new.pub"
expect_exit 0 "$keygen" -q -s "$TEST_TMP/ca" -I web9 -r agent -V -2w:-1w "$TEST_TMP/web9.pub"
expect_exit 0 "$keygen" -q -s "$TEST_TMP/other-ca" -I web8 -r agent "$TEST_TMP/web8.pub"
cp "$TEST_TMP/host42-cert.pub" "$TEST_TMP/web7-cert.pub"

auth=$TEST_TMP/authorized
ca_line="@cert-authority $(cat "$TEST_TMP/ca.pub")"
backend_line="role=backend,id=soc $(cat "$TEST_TMP/soc.pub")"
printf '%s\n%s\n' "$ca_line" "$backend_line" >"$auth"
revoked=$TEST_TMP/revoked
printf '# nothing revoked yet\n' >"$revoked"
# A revocation list with bad lines stops the start, naming every one.
printf 'serial 12x\n%s\nnot a key\n' "$(cat "$TEST_TMP/web9.pub")" >"$TEST_TMP/bad-revoked"
expect_error 6 "$gateway" --listen 127.0.0.1:0 --identity "$TEST_TMP/gateway" --authorized "$auth" \
    --revoked "$TEST_TMP/bad-revoked" --state-dir "$TEST_TMP/gw-state"
expect_contains "$err" "has 2 bad lines, none applied"
expect_contains "$err" "bad-revoked:1:"
expect_contains "$err" "bad-revoked:3:"
start_gateway --state-dir "$TEST_TMP/gw-state" --revoked "$revoked"
glog=$gateway_log url=$gateway_url
expect_contains "$(cat "$glog")" "1 authorized identities and 1 certificate authorities" "the gateway log"
timing=(--backoff-min 0.2 --backoff-max 1 --timeout 20 --heartbeat 0)

# The certified agent and the listed backend connect; a message goes from one to the other.
start_broker host42 --heartbeat 0
a_sock=$broker_sock
start_broker soc --heartbeat 0
b_sock=$broker_sock
wait_for "the certified session in the gateway log" 20 grep -q "authenticated id=host42 role=agent" "$glog"

"$sub" --socket "$b_sock" -C 1 -W 20s 'agent.host42.>' >"$TEST_TMP/received" 2>"$TEST_TMP/sub.err" &
sub_pid=$!
at_exit kill "$sub_pid"
wait_for "the backend's subscription" 20 stat_has "$b_sock" '"agent.host42.>"'
expect_exit 0 "$send" --socket "$a_sock" --wait-ack agent.host42.hello -m "certified hello"
wait "$sub_pid" || fail "aegis-sub did not receive the message: $(cat "$TEST_TMP/sub.err")"
expect_contains "$(cat "$TEST_TMP/received")" "certified hello" "what the backend received"

# Expired: refused with its own reason and the dates, at the first handshake (exit 4).
expect_error 4 "$connect" "$url" --identity "$TEST_TMP/web9" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/w9.sock" --state-dir "$TEST_TMP/web9-state" "${timing[@]}"
expect_contains "$err" "certificate expired or not yet valid"
expect_contains "$err" "of id web9 is expired: valid from "
wait_for "the gateway to log the expired certificate" 20 grep -q "certificate_expired" "$glog"

# Signed by a CA the gateway does not trust: unknown identity, naming the CA (exit 4).
other_ca=$(fingerprint "$TEST_TMP/other-ca.pub")
expect_error 4 "$connect" "$url" --identity "$TEST_TMP/web8" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/w8.sock" --state-dir "$TEST_TMP/web8-state" "${timing[@]}"
expect_contains "$err" "unknown identity"
expect_contains "$err" "signed by CA $other_ca, not trusted"

# A certificate beside the wrong key: refused at start, before any connection (exit 6).
expect_error 6 "$connect" "$url" --identity "$TEST_TMP/web7" --backend-key "$TEST_TMP/gateway.pub" \
    --socket "$TEST_TMP/w7.sock" --state-dir "$TEST_TMP/web7-state" "${timing[@]}"
expect_contains "$err" "web7-cert.pub' is for key"
[[ ! -e $TEST_TMP/w7.sock ]] || fail "aegis-connect started a broker with a mismatched certificate"
check_passed

# Key rollover: the new key of host42 (its own certificate, same id) connects beside the old one.
start_broker host42-new --heartbeat 0
n_sock=$broker_sock
stat_has "$a_sock" '"state": *"connected"' || fail "the old key lost its session when the new one connected"
# A revocation list with a bad line on SIGHUP: nothing of it applies, both stay connected.
printf '%s\nserial forty\n' "$(cat "$TEST_TMP/host42.pub")" >"$revoked"
kill -HUP "$gateway_pid"
wait_for "the gateway to refuse the bad list" 20 grep -q "reload failed.*not 'forty'" "$glog"
stat_has "$a_sock" '"state": *"connected"' || fail "a bad revocation list revoked the old key"
# The old key revoked: its session is closed and it is refused; the new one stays connected.
printf '# rolled over\n%s\n' "$(cat "$TEST_TMP/host42.pub")" >"$revoked"
kill -HUP "$gateway_pid"
wait_for "the gateway to close the old key's session" 20 grep -qF "revoked id=host42 fingerprint=$(fingerprint "$TEST_TMP/host42.pub")" "$glog"
wait_for "the old key's broker to say refused" 20 stat_has "$a_sock" '"state": *"refused"'
stat_has "$n_sock" '"state": *"connected"' || fail "the new key lost its session when the old one was revoked"
expect_contains "$(cat "$glog")" "is in the revocation list" "the gateway log"
# A revoked serial refuses the new key's certificate too.
printf 'serial 4242\n' >>"$revoked"
kill -HUP "$gateway_pid"
wait_for "the new key's broker to say refused" 20 stat_has "$n_sock" '"state": *"refused"'
expect_contains "$(cat "$glog")" "certificate serial 4242 is in the revocation list" "the gateway log"
printf '# empty again\n' >"$revoked"
kill -HUP "$gateway_pid"
wait_for "the old key back" 20 stat_has "$a_sock" '"state": *"connected"'
check_passed

# The CA no longer trusted (SIGHUP): the certified session is revoked, the listed one stays.
echo "$backend_line" >"$auth"
: >"$glog"
kill -HUP "$gateway_pid"
wait_for "the gateway to revoke host42" 20 grep -q "revoked id=host42" "$glog"
wait_for "the agent broker to say refused" 20 stat_has "$a_sock" '"state": *"refused"'
stat_has "$b_sock" '"state": *"connected"' || fail "the listed backend lost its session on the reload"
check_passed

summary
