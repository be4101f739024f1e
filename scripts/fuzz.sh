#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS on a copy of its seed corpus.
#
#   scripts/fuzz.sh [SECONDS [BUILD_DIR]]      (SECONDS per target, default 30; build-fuzz/)
#
# Targets and seed corpora: fuzz_config (fuzz/corpus/config/: the TOML configuration loader),
# fuzz_kineto (fuzz/corpus/kineto/: the Chrome-trace importer, every Kineto schema, gzip, the
# profile round trip), fuzz_sets (fuzz/corpus/sets/: --set arguments laid over a scenario),
# fuzz_sweep (fuzz/corpus/sweep/: sweep files and their point ids). The corpora hold the inputs
# of every crash and hang found so far (a 15 KB kernel name, huge recorded dims, a 2^32
# micro-batch global_batch, --set newline injection, a sweep named ../x, ...). Four targets at
# 30 s keep CI's fuzzing at two minutes, as it was with two targets at 60 s.
# The build uses clang, AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer. A crash, a
# sanitizer report, a timeout or running out of memory makes the script exit non-zero; the
# input that did it is kept in BUILD_DIR/fuzz-artifacts/ (rerun: BUILD_DIR/fuzz/<target> FILE).
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${2:-${TRAINSIM_FUZZ_BUILD:-$root/build-fuzz}}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
jobs="${TRAINSIM_JOBS:-$(nproc)}"

if [[ ! -f "$build/build.ninja" ]]; then
  CC="${CC:-clang}" CXX="${CXX:-clang++}" cmake -S "$root" -B "$build" -G Ninja \
    -DTRAINSIM_FUZZ=ON -DTRAINSIM_SANITIZE=ON -DTRAINSIM_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$jobs" --target fuzz_config fuzz_kineto fuzz_sets fuzz_sweep

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TRAINSIM_DATA="${TRAINSIM_DATA:-$root}"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

run_one() {
  local target="$1" corpus="$2" maxlen="$3"
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/trainsim-fuzz.XXXXXX")"
  cp -r "$root/fuzz/corpus/$corpus" "$work/corpus"
  local status=0
  (cd "$work" && "$build/fuzz/$target" "$work/corpus" \
    -max_total_time="$seconds" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1) >"$work/log" 2>&1 || status=$?
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/log" | sed "s/^/$target: /" || true
  if [[ $status -ne 0 ]]; then
    tail -40 "$work/log" >&2
    echo "fuzz.sh: $target failed (status $status); inputs in $artifacts/:" >&2
    ls -l "$artifacts" >&2 || true
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$work"
  echo "fuzz.sh: $target: no crash in ${seconds}s"
}

run_one fuzz_config config 4096
run_one fuzz_kineto kineto 16384
run_one fuzz_sets sets 4096
run_one fuzz_sweep sweep 8192
