#!/usr/bin/env bash
# Configures and builds trainsim (Release-with-debug-info) into build/. Project warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRAINSIM_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
