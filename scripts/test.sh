#!/usr/bin/env bash
# The README's test command and what CI runs (.ci/run): installs the packages, then builds and
# runs every test with ctest in build/. With --all it then runs the same suite built with
# AddressSanitizer and UndefinedBehaviorSanitizer (Debug) in build-sanitize/, stopping at the
# first suite that fails. (CI runs the normal suite only until the sanitizer suite has passed
# on the current tests: the attack tests' memory bounds, for one, have not been checked under
# ASan's quarantine.)
# Usage: scripts/test.sh [--no-sanitize | --sanitize | --all] [ctest arguments...]
#   --no-sanitize  the normal build and suite only (the default)
#   --sanitize     the sanitizer build and suite only
#   --all          both, normal first
# AEGIS_BUILD_DIR moves the normal build; the sanitizer build then goes to $AEGIS_BUILD_DIR-sanitize.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

normal=1
sanitize=
case ${1:-} in
  --no-sanitize) shift ;;
  --sanitize) normal= sanitize=1 && shift ;;
  --all) sanitize=1 && shift ;;
esac

# suite NAME [build.sh arguments...]: builds, then runs ctest with the script's arguments.
ctest_args=("$@")
suite() {
  local name=$1 build_dir started=$SECONDS
  shift
  echo "test.sh: $name build and suite" >&2
  build_dir=$("$root/scripts/build.sh" "$@" | tail -n 1)
  (cd "$build_dir" && ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}")
  echo "test.sh: $name build and suite passed in $((SECONDS - started)) s" >&2
}

if [[ -n $normal ]]; then
  suite normal
fi
if [[ -n $sanitize ]]; then
  if [[ -n ${AEGIS_BUILD_DIR:-} && -n $normal ]]; then
    export AEGIS_BUILD_DIR=$AEGIS_BUILD_DIR-sanitize
  fi
  suite sanitizer --sanitize
fi
