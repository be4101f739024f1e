#!/usr/bin/env bash
# Installs the Debian 12 packages trainsim needs (as root, or with sudo).
#
#   scripts/install-deps.sh          what building and running trainsim needs (a compiler, CMake,
#                                    Ninja and the libraries of README "Dependencies")
#   scripts/install-deps.sh --test   that, plus what only the tests need: Catch2, Google Benchmark,
#                                    clang + compiler-rt (ASan/UBSan build, libFuzzer), Chromium +
#                                    DejaVu fonts (the HTML report rendered headless), libpng
#                                    (decodes its screenshot) and OpenMPI (mpirun -np N trainsim
#                                    sweep, built when found, and its test)
#
# The CUDA toolkit (for the optional CUPTI profiler) is not a Debian package: if it is at
# /usr/local/cuda the build finds it, otherwise the profiler is skipped.
set -euo pipefail
test=0
for a in "$@"; do
  case "$a" in
    --test) test=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown option '$a' (use --test for the test-only packages)" >&2; exit 2 ;;
  esac
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  g++ cmake ninja-build pkg-config       # compiler and build
  libboost-graph-dev                     # Boost.Graph: task graph, topology
  libeigen3-dev                          # Eigen: least-squares fits of kernel cost models
  libfmt-dev                             # fmt: formatting
  libtomlplusplus-dev                    # toml++: configuration with file/line/column
  libcli11-dev                           # CLI11: command line
  nlohmann-json3-dev                     # nlohmann-json: --json output, traces
  libsqlite3-dev                         # SQLite: sweep results
  libre2-dev                             # RE2: linear-time kernel-classifier regexes
  libssl-dev                             # OpenSSL libcrypto: SHA-256 identity of sweep results
  zlib1g-dev                             # zlib: gzip-compressed traces
)
TEST_PKGS=(
  catch2                                 # Catch2 v2: tests
  libbenchmark-dev                       # Google Benchmark: bench/
  clang libclang-rt-14-dev               # libFuzzer and sanitizer runtimes (fuzz + ASan/UBSan build)
  chromium fonts-dejavu-core             # the HTML-report test renders report.html headless
  libpng-dev                             # ...and decodes the screenshot PNG to check it is not blank
  libopenmpi-dev openmpi-bin             # OpenMPI: the build's optional MPI sweeps (TRAINSIM_MPI=AUTO finds
                                         # it) and mpirun for their test (tests/test_sweep_mpi.cpp)
)
if [ "$test" -eq 1 ]; then PKGS+=("${TEST_PKGS[@]}"); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$test" -eq 1 ]; then echo "install-deps: build, run and test packages present"
else echo "install-deps: build and run packages present (scripts/install-deps.sh --test adds the test-only ones)"; fi
