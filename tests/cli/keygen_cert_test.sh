#!/usr/bin/env bash
# aegis-keygen as an operator CA: -s certifies public keys, -L shows a certificate; the files,
# what is printed, and the refusals (usage 2, bad input 6).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keygen="$AEGIS_BIN/aegis-keygen"
[[ -x $keygen ]] || fail "$keygen is not built"

ca="$TEST_TMP/ca/aegis_ca"
host="$TEST_TMP/hosts/web3"
expect_exit 0 "$keygen" -q -f "$ca" -C "fleet CA"
expect_exit 0 "$keygen" -q -f "$host" -C "web3 key"
ca_fingerprint=$("$keygen" -l -f "$ca.pub" | cut -d' ' -f1)
host_fingerprint=$("$keygen" -l -f "$host.pub" | cut -d' ' -f1)

# Signing: the certificate goes beside the key as KEY-cert.pub, 0644, one line.
expect_exit 0 "$keygen" -s "$ca" -I web3 -r agent -z 77 -V 20260101:20270101 -n 'pub=agent.web3.>' "$host.pub"
cert="$TEST_TMP/hosts/web3-cert.pub"
expect_eq "$err" "" "stderr"
expect_contains "$out" "Signed agent certificate $cert: id \"web3\" serial 77 for $host_fingerprint"
expect_contains "$out" "valid from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z"
expect_mode 644 "$cert"
text=$(cat "$cert")
expect_lines 1 "$text" "certificate file"
expect_match "$text" '^aegis-ed25519-cert [A-Za-z0-9+/]+=* web3 key$' "certificate file"

# Showing it: every field, and the same as JSON.
expect_exit 0 "$keygen" -L -f "$cert"
expect_contains "$out" "Type: aegis-ed25519-cert agent certificate"
expect_contains "$out" "Public key: $host_fingerprint"
expect_contains "$out" "Signing CA: $ca_fingerprint"
expect_contains "$out" 'Id: "web3"'
expect_contains "$out" "Serial: 77"
expect_contains "$out" "Publish narrowing: agent.web3.>"
expect_contains "$out" "Subscribe narrowing: (none)"
expect_exit 0 "$keygen" -L --json -f "$cert"
json=$out
python3 - "$json" "$host_fingerprint" "$ca_fingerprint" <<'PY' || fail "JSON of -L: $json"
import json, sys
c = json.loads(sys.argv[1])
assert c["role"] == "agent" and c["id"] == "web3" and c["serial"] == 77, c
assert c["fingerprint"] == sys.argv[2] and c["ca_fingerprint"] == sys.argv[3], c
assert c["valid_after"] == 1767225600 and c["valid_before"] == 1798761600, c
assert c["pub"] == "agent.web3.>" and c["sub"] is None and c["comment"] == "web3 key", c
assert c["status"] in ("valid", "expired"), c
PY
check_passed

# Defaults: valid always:forever, a random serial, the key's own comment; -q prints nothing.
backend="$TEST_TMP/backend"
expect_exit 0 "$keygen" -q -f "$backend" -C "api"
expect_exit 0 "$keygen" -q -s "$ca" -I api -r backend "$backend.pub"
expect_eq "$out" "" "stdout of -q"
expect_exit 0 "$keygen" -L --json -f "$backend-cert.pub"
python3 -c '
import json, sys
c = json.loads(sys.argv[1])
assert c["role"] == "backend" and c["status"] == "valid", c
assert c["valid_after"] == 0 and c["valid_before"] == 18446744073709551615, c
assert c["valid_from_text"] == "always" and c["valid_to_text"] == "forever", c
assert 0 <= c["serial"] < 2**63 and c["comment"] == "api", c
' "$out" || fail "defaults: $out"
check_passed

# Relative validity: from now for a week; an expired one says so.
expect_exit 0 "$keygen" -q --force -s "$ca" -I web3 -r agent -V +1w "$host.pub"
expect_exit 0 "$keygen" -L -f "$cert"
expect_contains "$out" "(valid)"
expect_exit 0 "$keygen" -q --force -s "$ca" -I web3 -r agent -V -2w:-1w "$host.pub"
expect_exit 0 "$keygen" -L -f "$cert"
expect_contains "$out" "(expired)"
expect_exit 0 "$keygen" -q --force -s "$ca" -I web3 -r agent -V +1w:forever "$host.pub"
expect_exit 0 "$keygen" -L -f "$cert"
expect_contains "$out" "(not yet valid)"

# An existing certificate is not replaced without --force.
expect_error 6 "$keygen" -s "$ca" -I web3 -r agent "$host.pub"
expect_contains "$err" "already exists (use --force"

# Usage errors, before any file is touched.
expect_error 2 "$keygen" -s "$ca" -r agent "$host.pub"
expect_contains "$err" "-I ID"
expect_error 2 "$keygen" -s "$ca" -I web3 "$host.pub"
expect_contains "$err" "-r agent|backend|gateway"
expect_error 2 "$keygen" -s "$ca" -I web3 -r agent
expect_contains "$err" "KEY.pub"
expect_error 2 "$keygen" -s "$ca" -I web3 -r admin "$host.pub"
expect_contains "$err" "expected agent, backend or gateway"
expect_error 2 "$keygen" -s "$ca" -I 'web 3' -r agent "$host.pub"
expect_error 2 "$keygen" -s "$ca" -I web3 -r agent -n 'pubx=a' "$host.pub"
expect_contains "$err" "pub=PATTERN"
expect_error 2 "$keygen" -s "$ca" -I web3 -r agent -n 'sub=agent..x' "$host.pub"
expect_contains "$err" "sub="
for bad in 20270231 2027 +1y +w forever:now now:always 20280101:20270101 +1w:-1w; do
    expect_error 2 "$keygen" -s "$ca" -I web3 -r agent -V "$bad" "$host.pub"
    expect_contains "$err" "-V '$bad'"
done
expect_error 2 "$keygen" -I web3 "$host.pub"
expect_contains "$err" "only when signing a certificate (-s)"
expect_error 2 "$keygen" -L
expect_contains "$err" "-L needs the certificate file"
expect_error 2 "$keygen" -L -l -f "$cert"
expect_error 2 "$keygen" -s "$ca" -I web3 -r agent --json "$host.pub"

# Bad input: a CA key that is not a secret key, a key that is not a public key, a corrupt or
# altered certificate.
expect_error 6 "$keygen" -s "$ca.pub" -I web3 -r agent --force "$host.pub"
expect_contains "$err" "secret key is needed"
expect_error 6 "$keygen" -s "$ca" -I web3 -r agent --force "$TEST_TMP/missing.pub"
expect_error 6 "$keygen" -L -f "$host.pub"
expect_contains "$err" "is a public key, not a certificate"
expect_exit 0 "$keygen" -q --force -s "$ca" -I web3 -r agent -z 1 "$host.pub"
# Flip one bit of the id inside the base64 (serial 1 -> another serial): the signature no longer verifies.
python3 - "$cert" <<'PY'
import base64, sys
path = sys.argv[1]
kind, data, *comment = open(path).read().split(" ")
raw = bytearray(base64.b64decode(data))
raw[19 + 32 + 1 + 1 + 4 + 7] ^= 0x02
open(path, "w").write(" ".join([kind, base64.b64encode(bytes(raw)).decode()] + comment))
PY
expect_error 6 "$keygen" -L -f "$cert"
expect_contains "$err" "has a signature that does not verify"

summary
