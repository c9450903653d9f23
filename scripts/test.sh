#!/usr/bin/env bash
# Installs, builds and runs every test with ctest. This is the README's test command and
# what CI runs. Usage: scripts/test.sh [--sanitize] [ctest arguments...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_args=()
if [[ ${1:-} == --sanitize ]]; then
  build_args+=(--sanitize)
  shift
fi
build_dir=$("$root/scripts/build.sh" "${build_args[@]}" | tail -n 1)

cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
