#!/usr/bin/env bash
# Configures and builds trainsim (Release-with-debug-info) into build/. Project warnings are errors.
# Extra arguments go to CMake (scripts/test.sh passes -DTRAINSIM_TESTS=ON). Tests are built when
# Catch2 is installed (scripts/install-deps.sh --test), skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRAINSIM_WERROR=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"
