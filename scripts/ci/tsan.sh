#!/usr/bin/env bash
# ThreadSanitizer (clang) on the multithreaded kernels' tests: the thread pool, the evaluator's
# matrix products on 1-3 threads, the paired statistics' reducer threads, the format kernels on a
# pool of 3. One small test binary
# (tests/reliability/CMakeLists.txt), its cases chosen by name; the 10^8-pair case is left to the
# other jobs (under TSan it needs several GB and minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang; }
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed' ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-14-dev; }
build=${TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DFQ_SANITIZE=thread -DFQ_WERROR=ON -DFQ_BUILD_BENCHMARKS=OFF -DFQ_INSTALL=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target fq_thread_tests

run() {
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" "$@" \
    "$build/tests/reliability/fq_thread_tests" --test-case='*thread*' --test-case-exclude='*10^8*'
}
log="$build/tsan.log"
if run >"$log" 2>&1; then
  tail -n 4 "$log"
elif grep -q 'unexpected memory mapping' "$log"; then
  # Kernels with high mmap randomisation (vm.mmap_rnd_bits > 28) put mappings where TSan's
  # shadow memory must go; without address randomisation it works.
  echo "tsan: retrying without address-space randomisation (setarch -R)"
  run setarch "$(uname -m)" -R
else
  cat "$log"
  exit 1
fi
