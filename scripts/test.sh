#!/usr/bin/env bash
# The README's test command and what CI runs (.ci/run): installs the packages, builds and runs
# every test with ctest in build/, then builds the same suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debug, clang) in build-sanitize/ and runs it again, stopping at the
# first suite that fails.
# Usage: scripts/test.sh [--no-sanitize | --sanitize | --all] [ctest arguments...]
#   --no-sanitize  the normal build and suite only
#   --sanitize     the sanitizer build and suite only
#   --all          both, normal first (the default)
# AEGIS_BUILD_DIR moves the normal build; the sanitizer build then goes to $AEGIS_BUILD_DIR-sanitize.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

normal=1
sanitize=1
case ${1:-} in
  --no-sanitize) sanitize= && shift ;;
  --sanitize) normal= && shift ;;
  --all) shift ;;
esac

# suite NAME [build.sh arguments...]: builds, then runs ctest with the script's arguments.
ctest_args=("$@")
suite() {
  local name=$1 build_dir started=$SECONDS built
  shift
  echo "test.sh: $name build and suite" >&2
  build_dir=$("$root/scripts/build.sh" "$@" | tail -n 1)
  built=$SECONDS
  (cd "$build_dir" && ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}")
  echo "test.sh: $name build and suite passed in $((SECONDS - started)) s" \
    "(build $((built - started)) s, tests $((SECONDS - built)) s)" >&2
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
