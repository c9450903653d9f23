#!/usr/bin/env bash
# aegis-keygen as a process: making, showing and checking key files, and refusing bad ones.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keygen="$AEGIS_BIN/aegis-keygen"
[[ -x $keygen ]] || fail "$keygen is not built"

secret_re='^aegis-ed25519-secret [A-Za-z0-9+/]{86}=='
public_re='^aegis-ed25519 [A-Za-z0-9+/]{43}='
fingerprint_re='^SHA256:[A-Za-z0-9+/]{43}'

# Making a key: files, modes, formats, and what is printed.
key="$TEST_TMP/keys/id"
expect_exit 0 "$keygen" -f "$key" -C "test key one"
expect_eq "$err" "" "stderr"
expect_contains "$out" "$key"
expect_contains "$out" "$key.pub"
generated_fingerprint=$(tail -n 1 <<<"$out")
expect_match "$generated_fingerprint" "${fingerprint_re} test key one\$" "printed fingerprint"
expect_mode 700 "$TEST_TMP/keys"
expect_mode 600 "$key"
expect_mode 644 "$key.pub"
secret_text=$(cat "$key")
expect_lines 1 "$secret_text" "secret key file"
expect_match "$secret_text" "${secret_re} test key one\$" "secret key file"
public_text=$(cat "$key.pub")
expect_lines 1 "$public_text" "public key file"
expect_match "$public_text" "${public_re} test key one\$" "public key file"
secret_field=$(cut -d ' ' -f 2 "$key")
public_field=$(cut -d ' ' -f 2 "$key.pub")
expect_not_contains "$out" "$secret_field" "key generation output"

# -y prints exactly the .pub line.
expect_exit 0 "$keygen" -y -f "$key"
expect_eq "$out" "$public_text" "-y output"
expect_eq "$(cat "$RUN_STDOUT")" "$(cat "$key.pub")" "-y output"
cmp -s "$RUN_STDOUT" "$key.pub" || fail "-y output is not byte-for-byte the .pub file"
check_passed
expect_not_contains "$out" "$secret_field" "-y output"

# -l gives the same fingerprint line for the secret and the public file.
expect_exit 0 "$keygen" -l -f "$key"
expect_match "$out" "${fingerprint_re} test key one\$" "-l output"
expect_lines 1 "$out" "-l output"
expect_eq "$out" "$generated_fingerprint" "-l of the secret key"
expect_not_contains "$out" "$secret_field" "-l output"
expect_exit 0 "$keygen" -l -f "$key.pub"
expect_eq "$out" "$generated_fingerprint" "-l of the public key"

# -l --json: one JSON object with the documented fields.
expect_exit 0 "$keygen" -l --json -f "$key.pub"
expect_lines 1 "$out" "--json output"
fields=$(python3 -c '
import json, sys
o = json.load(sys.stdin)
print("\t".join([o["fingerprint"], o["comment"], o["type"], o["public_key"], o["file"], ",".join(sorted(o))]))
' <<<"$out") || fail "--json output does not parse as the expected JSON object"
check_passed
expected_fields=$(printf '%s\t%s\t%s\t%s\t%s\t%s' "${generated_fingerprint%% *}" "test key one" ed25519 \
    "$public_field" "$key.pub" "comment,file,fingerprint,public_key,type")
expect_eq "$fields" "$expected_fields" "--json fields"
expect_exit 0 "$keygen" --json -l -f "$key"
expect_contains "$out" "\"fingerprint\":\"${generated_fingerprint%% *}\""
expect_not_contains "$out" "$secret_field" "--json output"

# An existing key is never replaced without --force.
cp "$key" "$TEST_TMP/id.before"
cp "$key.pub" "$TEST_TMP/id.pub.before"
expect_error 6 "$keygen" -q -f "$key"
expect_contains "$err" "$key"
expect_contains "$err" "already exists (use --force to overwrite)"
cmp -s "$key" "$TEST_TMP/id.before" && cmp -s "$key.pub" "$TEST_TMP/id.pub.before" ||
    fail "a refused key generation changed the key files"
check_passed
lone="$TEST_TMP/lone"
echo "placeholder" >"$lone.pub"
expect_error 6 "$keygen" -q -f "$lone"
expect_contains "$err" "$lone.pub"
[[ ! -e $lone ]] || fail "a refused generation left '$lone' behind"
check_passed

# --force replaces both files, with the same modes.
expect_exit 0 "$keygen" -q --force -f "$key" -C "second"
expect_eq "$out" "" "-q output"
cmp -s "$key" "$TEST_TMP/id.before" && fail "--force did not replace the secret key"
check_passed
expect_mode 600 "$key"
expect_mode 644 "$key.pub"
expect_exit 0 "$keygen" -y -f "$key"
expect_eq "$out" "$(cat "$key.pub")" "-y after --force"
expect_match "$out" "${public_re} second\$" "-y after --force"
expect_eq "$(find "$TEST_TMP/keys" -type f | wc -l)" "2" "files in the key directory after --force"

# The default path: $XDG_CONFIG_HOME first, else $HOME/.config; the comment defaults to user@host.
XDG_CONFIG_HOME="$TEST_TMP/xdg" expect_exit 0 "$keygen" -q
expect_mode 700 "$TEST_TMP/xdg/aegis"
expect_mode 600 "$TEST_TMP/xdg/aegis/id_ed25519"
expect_mode 644 "$TEST_TMP/xdg/aegis/id_ed25519.pub"
expect_match "$(cat "$TEST_TMP/xdg/aegis/id_ed25519.pub")" "${public_re} [^ ]+@[^ ]+\$" "default comment"
XDG_CONFIG_HOME="$TEST_TMP/xdg" expect_exit 0 "$keygen" -l
expect_eq "$out" "$("$keygen" -l -f "$TEST_TMP/xdg/aegis/id_ed25519.pub")" "-l of the default key"
XDG_CONFIG_HOME="$TEST_TMP/xdg" expect_error 6 "$keygen" -q
expect_contains "$err" "$TEST_TMP/xdg/aegis/id_ed25519"
mkdir -p "$TEST_TMP/home"
expect_exit 0 env -u XDG_CONFIG_HOME HOME="$TEST_TMP/home" "$keygen" -q -C "home key"
expect_mode 700 "$TEST_TMP/home/.config/aegis"
expect_mode 600 "$TEST_TMP/home/.config/aegis/id_ed25519"
expect_exit 0 env -u XDG_CONFIG_HOME HOME="$TEST_TMP/home" "$keygen" -y
expect_eq "$out" "$(cat "$TEST_TMP/home/.config/aegis/id_ed25519.pub")" "-y of the default key"

# A secret key others can read is refused, like ssh.
loose="$TEST_TMP/loose"
cp "$key" "$loose"
chmod 644 "$loose"
expect_error 6 "$keygen" -y -f "$loose"
expect_contains "$err" "permissions 0644 for '$loose' are too open"
expect_contains "$err" "chmod 600"
chmod 640 "$loose"
expect_error 6 "$keygen" -l -f "$loose"
expect_contains "$err" "0640"
chmod 600 "$loose"
expect_exit 0 "$keygen" -y -f "$loose"

# Broken key files: exit 6, one line naming the file, never a crash.
broken="$TEST_TMP/broken"
mkdir "$broken"
head -c 40 "$key" >"$broken/truncated"
head -c 80 "$key" >"$broken/truncated-key"
printf 'aegis-ed25519-secret\n' >"$broken/type-only"
printf 'this is not a key at all\n' >"$broken/garbage"
: >"$broken/empty"
printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00' >"$broken/binary"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n' >"$broken/ssh-key"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n' \
    >"$broken/openssh-private"
cp "$key.pub" "$broken/public-as-secret"
head -c 20000 /dev/zero | tr '\0' 'A' >"$broken/oversized"
sed 's/^\(aegis-ed25519-secret \)./\1B/' "$key" >"$broken/flipped"
[[ $(cat "$broken/flipped") != "$(cat "$key")" ]] || sed -i 's/^\(aegis-ed25519-secret \)./\1C/' "$broken/flipped"
chmod 600 "$broken"/*
for file in "$broken"/*; do
    expect_error 6 "$keygen" -y -f "$file"
    expect_no_crash
    expect_contains "$err" "$file"
    expect_eq "$out" "" "stdout for $(basename "$file")"
done
expect_contains "$("$keygen" -y -f "$broken/public-as-secret" 2>&1)" "a secret key is needed"
expect_contains "$("$keygen" -y -f "$broken/ssh-key" 2>&1)" "ssh key"
expect_contains "$("$keygen" -y -f "$broken/empty" 2>&1)" "is empty"
for file in "$broken"/{truncated,garbage,empty,binary,ssh-key,oversized} "$TEST_TMP/missing" "$broken"; do
    expect_error 6 "$keygen" -l -f "$file"
    expect_no_crash
done
expect_error 6 "$keygen" -y -f "$TEST_TMP/missing"
expect_contains "$err" "No such file"

# Usage errors: exit 2, one line.
expect_error 2 "$keygen" --bogus
expect_error 2 "$keygen" -y -l -f "$key"
expect_error 2 "$keygen" -f "$TEST_TMP/extra" extra-argument
expect_error 2 "$keygen" -f
expect_error 2 "$keygen" -f "$TEST_TMP/j" --json
expect_error 2 "$keygen" -y --json -f "$key"
expect_error 2 "$keygen" -y -C comment -f "$key"
expect_error 2 "$keygen" -l --force -f "$key"
expect_error 2 "$keygen" -f "$TEST_TMP/nl" -C $'two\nlines'
expect_error 2 "$keygen" -f ""
[[ ! -e $TEST_TMP/extra && ! -e $TEST_TMP/j && ! -e $TEST_TMP/nl ]] || fail "a usage error still wrote a key"
check_passed

expect_exit 0 "$keygen" --help
expect_contains "$out" "Usage: aegis-keygen"
expect_exit 0 "$keygen" -h
expect_exit 0 "$keygen" --version
expect_match "$out" '^aegis-keygen \(Aegis\) [0-9]+\.[0-9]+' "--version"
expect_exit 0 "$keygen" --version

summary
