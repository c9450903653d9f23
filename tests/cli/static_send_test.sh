#!/usr/bin/env bash
# aegis-send, started once per message by scripts, is a static position-independent executable
# (AEGIS_STATIC_SEND): no shared library to load, its address still randomised (a PIE), and no
# name service linked (the link fails if one is). The daemons and the other tools stay dynamic,
# on Debian's libsodium. Skipped in a build where aegis-send is dynamic (the sanitizers need it).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v readelf >/dev/null || skip "readelf is missing (binutils)"
[[ ${AEGIS_STATIC_SEND:-} == ON ]] || skip "aegis-send is linked dynamically in this build (AEGIS_STATIC_SEND is off, or the sanitizers are on)"

expect_exit 0 readelf --file-header --dynamic "$AEGIS_BIN/aegis-send"
expect_contains "$out" "DYN (Position-Independent Executable file)" "aegis-send's ELF type"
expect_not_contains "$out" "(NEEDED)" "aegis-send's dynamic section"
expect_exit 0 readelf --program-headers "$AEGIS_BIN/aegis-send"
expect_not_contains "$out" "INTERP" "aegis-send's program headers"

expect_exit 0 "$AEGIS_BIN/aegis-send" --version
expect_match "$out" '^aegis-send \(Aegis\) [0-9]+\.[0-9]+\.[0-9]+' "aegis-send --version"

for tool in aegis-connect aegis-gateway aegis-sub; do
    expect_exit 0 readelf --dynamic "$AEGIS_BIN/$tool"
    expect_match "$out" '\(NEEDED\).*\[libsodium\.so\.[0-9]+\]' "$tool's shared libraries"
done
echo "aegis-send: static PIE; aegis-connect, aegis-gateway, aegis-sub: shared libsodium"
