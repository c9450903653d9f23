#!/usr/bin/env bash
# Installs the dependencies (scripts/deps.sh) and builds into build/ (or $AEGIS_BUILD_DIR).
# Usage: scripts/build.sh [--sanitize] [extra cmake arguments...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"

build_dir=${AEGIS_BUILD_DIR:-$root/build}
args=(-DAEGIS_WERROR=ON)
if [[ ${1:-} == --sanitize ]]; then
  shift
  build_dir=${AEGIS_BUILD_DIR:-$root/build-sanitize}
  args+=(-DAEGIS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi

cmake -S "$root" -B "$build_dir" -G Ninja "${args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
echo "$build_dir"
