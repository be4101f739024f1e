#!/usr/bin/env bash
# The whole test run (what CI runs):
#  1. the normal build (warnings are errors) and every CTest test;
#  2. an ASan+UBSan build with clang and the quick tests under it, without MPI (TRAINSIM_MPI=OFF:
#     OpenMPI's own allocations would read as leaks, and it checks that a build without MPI runs
#     as before and refuses to run as several processes; build 1 has MPI and runs its tests);
#  3. each libFuzzer target for FUZZ_SECONDS (default 30) seconds (four targets: 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

echo "== build (RelWithDebInfo, -Werror, tests)"
# -g1 (line tables and backtraces, no variable locations): a fifth less compile time than -g.
scripts/build.sh -DTRAINSIM_TESTS=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== sanitizer build (clang, ASan+UBSan, libFuzzer targets)"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRAINSIM_SANITIZE=ON -DTRAINSIM_FUZZ=ON -DTRAINSIM_BENCH=OFF -DTRAINSIM_TESTS=ON -DTRAINSIM_MPI=OFF \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" >/dev/null  # ASan's usual -O1
cmake --build build-asan -j"$JOBS"
echo "== quick tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -L quick

if [ -x scripts/fuzz.sh ] && [ "$FUZZ_SECONDS" -gt 0 ]; then
  echo "== fuzzing (${FUZZ_SECONDS}s per target)"
  scripts/fuzz.sh "$FUZZ_SECONDS" build-asan
fi
echo "== all tests passed"
