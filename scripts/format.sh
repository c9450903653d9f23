#!/usr/bin/env bash
# Formats the C++ sources with the root .clang-format, or (--check) lists each file that drifts
# from it and exits 1. The suite runs the check ("format" in ctest), so CI fails on drift.
# Usage: scripts/format.sh [--check]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

check=
case ${1:-} in
  "") ;;
  --check) check=1 ;;
  *) echo "format.sh: error: unknown argument '$1' (usage: scripts/format.sh [--check])" >&2; exit 2 ;;
esac

if ! command -v clang-format >/dev/null; then
  echo "format.sh: error: clang-format not found (scripts/deps.sh installs it)" >&2
  exit 77
fi

mapfile -t files < <(find lib tools tests -type f \( -name '*.cpp' -o -name '*.h' \) | sort)
if [[ -z $check ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
drift=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "format.sh: $f differs from .clang-format (run scripts/format.sh)" >&2
    drift=$((drift + 1))
  fi
done
if ((drift)); then
  echo "format.sh: error: $drift of ${#files[@]} files differ from .clang-format" >&2
  exit 1
fi
echo "format.sh: ${#files[@]} files match .clang-format"
