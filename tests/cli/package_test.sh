#!/usr/bin/env bash
# The Debian package: cpack -G DEB builds it from the build tree; it holds the stripped tools,
# the man pages (sections 1, 5 and 7), the completions, the systemd units, the sysusers entry and
# the example configurations, and depends on Debian 12's shared libraries. Installed with dpkg
# into a root the test makes (its maintainer scripts run outside a chroot, with DPKG_ROOT), it
# creates the system user there, and its aegis-send runs and names its revision and libraries;
# removed, its files go. Prints the package's size and installed size.

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in cpack dpkg dpkg-deb readelf; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is missing (cmake, dpkg, binutils)"
        exit 77
    fi
done
build=$(cd "$AEGIS_BIN/.." && pwd)
[[ -f $build/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $build: configure with CMake first"

RUN_TIMEOUT=600 expect_exit 0 cpack -G DEB -B "$TEST_TMP/pkg" --config "$build/CPackConfig.cmake"
debs=("$TEST_TMP"/pkg/*.deb)
((${#debs[@]} == 1)) && [[ -f ${debs[0]} ]] || fail "cpack made no single .deb: ${debs[*]}"
deb=${debs[0]}

expect_exit 0 dpkg-deb --field "$deb" Package Depends Installed-Size
fields=$out
expect_contains "$fields" "Package: aegis"
for library in libsodium23 libssl3 libsqlite3-0 libsystemd0; do
    expect_contains "$fields" "$library" "Depends"
done
expect_not_contains "$fields" "libstdc++" "Depends (the C++ runtime is linked in)"
installed_kib=$(sed -n 's/^Installed-Size: //p' <<<"$fields")
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes; installed size ${installed_kib} KiB"

expect_exit 0 dpkg-deb --contents "$deb"
contents=$out
for tool in aegis-keygen aegis-connect aegis-send aegis-sub aegis-queue aegis-stat aegis-gateway; do
    expect_match "$contents" " \./usr/bin/$tool"$'(\n|$)' "the package's files"
    expect_match "$contents" " \./usr/share/man/man1/$tool\.1" "the package's files"
    expect_match "$contents" " \./usr/share/bash-completion/completions/$tool"$'(\n|$)' "the package's files"
    expect_match "$contents" " \./usr/share/zsh/vendor-completions/_$tool"$'(\n|$)' "the package's files"
    expect_match "$contents" " \./usr/share/fish/vendor_completions\.d/$tool\.fish" "the package's files"
done
for file in usr/share/man/man5/aegis-gateway.conf.5 usr/share/man/man5/aegis-connect.conf.5 \
    usr/share/man/man7/aegis.7 usr/lib/systemd/system/aegis-gateway.service \
    usr/lib/systemd/system/aegis-connect.service usr/lib/systemd/system/aegis-connect@.service \
    usr/lib/sysusers.d/aegis.conf usr/share/doc/aegis/examples/gateway.conf \
    usr/share/doc/aegis/examples/connect.conf; do
    expect_contains "$contents" " ./$file" "the package's files"
done
expect_not_contains "$contents" "./etc/aegis/" "the package's files (no configuration is installed)"

# --- installed into a root of the test's own -------------------------------------------------------

root=$TEST_TMP/root
mkdir -p "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/info" "$root/etc"
: >"$root/var/lib/dpkg/status"
dpkg_root=(dpkg --root="$root" --log="$TEST_TMP/dpkg.log" --force-script-chrootless --force-depends)
[[ $(id -u) -eq 0 ]] || dpkg_root+=(--force-not-root)
RUN_TIMEOUT=300 expect_exit 0 "${dpkg_root[@]}" --install "$deb"

for tool in aegis-keygen aegis-connect aegis-send aegis-sub aegis-queue aegis-stat aegis-gateway; do
    [[ -x $root/usr/bin/$tool ]] || fail "$tool is not installed in the root"
    # Stripped: no debug information, no symbol table.
    expect_exit 0 readelf --section-headers "$root/usr/bin/$tool"
    expect_not_contains "$out" ".debug_info" "$tool's sections"
    expect_not_contains "$out" ".symtab" "$tool's sections"
done
echo "installed: $(du -sk "$root/usr" | cut -f1) KiB under usr/"

expect_exit 0 "$root/usr/bin/aegis-send" --version
expect_match "$out" '^aegis-send \(Aegis\) [0-9]+\.[0-9]+\.[0-9]+'$'\n''git [0-9a-f]+(-dirty)?; libsodium [0-9.]+, OpenSSL 3\.[0-9.]+, SQLite 3\.[0-9.]+, Boost 1\.[0-9]+\.[0-9]+$' \
    "aegis-send --version"

# The maintainer script made the system user in that root, as the units want it.
expect_match "$(cat "$root/etc/passwd")" '(^|'$'\n'')aegis:x:[0-9]+:[0-9]+:[^:]*:/var/lib/aegis:' "the root's passwd"
expect_exit 0 "${dpkg_root[@]}" --status aegis
expect_contains "$out" "Status: install ok installed"

RUN_TIMEOUT=300 expect_exit 0 "${dpkg_root[@]}" --purge aegis
[[ ! -e $root/usr/bin/aegis-send ]] || fail "aegis-send is still there after the purge"
check_passed

summary
