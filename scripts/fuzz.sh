#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into build-fuzz/ (or
# $AEGIS_FUZZ_BUILD_DIR) and runs each for SECONDS (default 60) on a scratch copy of its seed
# corpus and kept regressions. Prints a table of executions and crashes; exits non-zero when a
# target crashed, naming the crashing input.
# Usage: scripts/fuzz.sh [--merge] [SECONDS] [TARGET...]
#   --merge   afterwards, add the inputs that found new coverage to tests/fuzz/corpus/<target>/
#             (minimised by libFuzzer's -merge=1); without it the repository is left alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

merge=0
if [[ ${1:-} == --merge ]]; then
  merge=1
  shift
fi
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))

"$root/scripts/deps.sh" --clang

build_dir=${AEGIS_FUZZ_BUILD_DIR:-$root/build-fuzz}
fuzz_dir=$root/tests/fuzz
# The library code is instrumented for coverage and the sanitizers; only the targets link
# libFuzzer's main. No -Werror: clang's warnings differ from g++'s and must not stop fuzzing.
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DAEGIS_FUZZ=ON -DAEGIS_STATIC_RUNTIME=OFF -DAEGIS_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$sanitize" >/dev/null
build_start=$(date +%s)
cmake --build "$build_dir" -j "$(nproc)" --target aegis_fuzz_targets
echo "fuzz.sh: fuzz build took $(($(date +%s) - build_start)) s" >&2

targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in "$fuzz_dir"/*_fuzz.cpp; do
    name=$(basename "$source")
    targets+=("${name%_fuzz.cpp}")
  done
fi

# Longest input worth trying per target: each parser's own limit, or what reaches all its code.
max_len_for() {
  case $1 in
    handshake_*) echo 2100 ;;  # kMaxHandshakeMessageBytes plus the mode byte
    public_key | channel) echo 1024 ;;
    secret_key) echo 2048 ;;
    *) echo 8192 ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_dir=$build_dir/fuzz-run
rows=()
crashed=()
for target in "${targets[@]}"; do
  binary=$build_dir/tests/fuzz/fuzz_$target
  [[ -x $binary ]] || { echo "fuzz.sh: no fuzz target '$target'" >&2; exit 2; }
  work=$run_dir/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp -r "$fuzz_dir/corpus/$target/." "$work/corpus/" 2>/dev/null || true
  cp -r "$fuzz_dir/regressions/$target/." "$work/corpus/" 2>/dev/null || true
  echo "fuzz.sh: fuzzing $target for ${seconds}s" >&2
  status=0
  "$binary" "$work/corpus" -max_total_time="$seconds" -max_len="$(max_len_for "$target")" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/crashes/" -print_final_stats=1 >"$work/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  found=$(find "$work/crashes" -type f | wc -l)
  rows+=("$(printf '%-18s %12s %10s %8s' "$target" "${execs:-?}" "${speed:-?}" "$found")")
  if ((status != 0 || found > 0)); then
    crashed+=("$target: exit $status, log $work/log")
    while IFS= read -r file; do crashed+=("  crash input: $file"); done < <(find "$work/crashes" -type f)
  fi
  if ((merge)); then
    "$binary" -merge=1 -max_len="$(max_len_for "$target")" "$fuzz_dir/corpus/$target" "$work/corpus" \
      >"$work/merge.log" 2>&1 || echo "fuzz.sh: merge for $target failed, see $work/merge.log" >&2
  fi
done

printf '%-18s %12s %10s %8s\n' target executions exec/s crashes
printf '%s\n' "${rows[@]}"
if ((${#crashed[@]})); then
  echo "fuzz.sh: crashes found:" >&2
  printf '%s\n' "${crashed[@]}" >&2
  exit 1
fi
