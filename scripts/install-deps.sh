#!/usr/bin/env bash
# Installs everything trainsim needs to build, test and run on Debian 12 (as root, or with sudo).
# The CUDA toolkit (for the optional CUPTI profiler) is not a Debian package: if it is at
# /usr/local/cuda the build finds it, otherwise the profiler is skipped.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  g++ cmake ninja-build pkg-config       # compiler and build
  clang libclang-rt-14-dev               # libFuzzer and sanitizer runtimes (fuzz + ASan/UBSan build)
  libboost-graph-dev                     # Boost.Graph: task graph, topology
  libeigen3-dev                          # Eigen: least-squares fits of kernel cost models
  libfmt-dev                             # fmt: formatting
  libtomlplusplus-dev                    # toml++: configuration with file/line/column
  libcli11-dev                           # CLI11: command line
  nlohmann-json3-dev                     # nlohmann-json: --json output, traces
  libsqlite3-dev                         # SQLite: sweep results
  libre2-dev                             # RE2: linear-time kernel-classifier regexes
  libssl-dev                             # OpenSSL libcrypto: SHA-256 identity of sweep results
  zlib1g-dev                             # zlib: gzip-compressed traces; the HTML test's PNG decoding
  catch2                                 # Catch2 v2: tests
  libbenchmark-dev                       # Google Benchmark: bench/
  chromium fonts-dejavu-core             # the HTML-report test renders report.html headless
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
