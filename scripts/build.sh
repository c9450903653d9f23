#!/usr/bin/env bash
# Installs the dependencies (scripts/deps.sh) and builds into build/ (or $AEGIS_BUILD_DIR).
# Usage: scripts/build.sh [--sanitize] [extra cmake arguments...]
#   --sanitize  a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer in
#               build-sanitize/ (or $AEGIS_BUILD_DIR), compiled with clang: g++ takes twice as
#               long to instrument the Asio and Beast code, and a second compiler's warnings
#               (-Werror here too) catch what the first lets pass.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_dir=${AEGIS_BUILD_DIR:-$root/build}
args=(-DAEGIS_WERROR=ON)
if [[ ${1:-} == --sanitize ]]; then
  shift
  "$root/scripts/deps.sh" --clang
  build_dir=${AEGIS_BUILD_DIR:-$root/build-sanitize}
  args+=(-DAEGIS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++)
else
  "$root/scripts/deps.sh"
fi

cmake -S "$root" -B "$build_dir" -G Ninja "${args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
echo "$build_dir"
