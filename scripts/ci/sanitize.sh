#!/usr/bin/env bash
# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (clang), with
# exhaustive sweeps excluded (their strided versions run here).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang; }
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed' ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-14-dev; }
build=build-asan
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DFQ_SANITIZE=address,undefined -DFQ_WERROR=ON -DFQ_BUILD_BENCHMARKS=OFF -DFQ_INSTALL=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$build" -j "$(nproc)" --output-on-failure -LE 'exhaustive|package' \
  --output-junit ctest-junit.xml
python3 scripts/check_skips.py "$build/ctest-junit.xml" .ci/allowed-skips
