#!/usr/bin/env bash
# NEON: the format tests (strided sweeps, no exhaustive ones) cross-compiled for AArch64 with
# Debian's g++-aarch64-linux-gnu and run under qemu-user, where xsimd's default architecture is
# arm64+neon. xsimd and doctest are header-only and fmt is used header-only (FMT_HEADER_ONLY), so
# the host's headers serve the cross compiler (../shared/docs/style.md §4.9).
#
# Test files that run the native fakequant program (run_program) or include x86 intrinsics are
# left out: the native build runs them. NEON_JOBS qemu processes (default: the cores) share the
# test cases. Timings under qemu mean nothing; correctness does.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

build=${NEON_BUILD_DIR:-build-neon}
mkdir -p "$build"
sources=()
for f in tests/format/test_*.cpp; do
  if grep -qE 'run_program|FQ_PROGRAM|immintrin\.h' "$f"; then
    echo "neon: skipping $f (needs the native program or x86 intrinsics)"
  else
    sources+=("$f")
  fi
done
echo "neon: ${#sources[@]} test files: ${sources[*]}"

# One object per source (the two cores compile in parallel, and only changed files recompile);
# the same warnings as the native build.
cxx=(aarch64-linux-gnu-g++ -std=c++20 -O2 -ffp-contract=off -Wall -Wextra -Wpedantic -Werror
  -DFMT_HEADER_ONLY -DFQ_SHARED_DIR="\"$(cd .. && pwd)/shared\"" -DFQ_PROGRAM="\"/nonexistent\""
  -Iinclude -Itests -I/usr/include)
objects=()
pids=()
for src in tests/main.cpp "${sources[@]}"; do
  obj="$build/$(echo "$src" | tr '/' '_').o"
  objects+=("$obj")
  if [ ! -e "$obj" ] || [ -n "$(find "$src" include tests -newer "$obj" -name '*.[ch]pp' -print -quit)" ]; then
    "${cxx[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$(nproc)" ]; then
      wait "${pids[0]}"
      pids=("${pids[@]:1}")
    fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
"${cxx[@]}" "${objects[@]}" -o "$build/format_tests_arm64" -pthread
echo "neon: built in $((SECONDS - start)) s"

run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/format_tests_arm64" "$@"; }
# The run-time ieee_eXmY sweep (11 min of CPU under qemu) runs natively only: those formats take the
# predefined formats' code paths, which the NEON run sweeps; CI stays inside its time budget.
filters=(--test-suite-exclude='*exhaustive*' --test-case-exclude='*run-time ieee_eXmY*' --order-by=name)
# The architecture the tests and the format kernels run (test_arch.cpp checks it is NEON).
FQ_EXPECT_ARCH=arm64+neon run -tc='format: the SIMD architecture of this build' >"$build/arch.log" 2>&1 ||
  { cat "$build/arch.log"; exit 1; }
grep -o 'xsimd default architecture: .*' "$build/arch.log" | sed 's/^/neon: /'

# One qemu process per test case (the strided sweeps dominate; this balances them best), NEON_JOBS
# at a time.
jobs=${NEON_JOBS:-$(nproc)}
total=$(run --count "${filters[@]}" | sed -n 's/.*passing the current filters: *\([0-9]*\).*/\1/p')
per=1
echo "neon: $total test cases, $jobs processes at a time"
status=0
ranges=()
for ((first = 1; first <= total; first += per)); do
  last=$((first + per - 1))
  log="$build/run-$first.log"
  ranges+=("$log")
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
  run "${filters[@]}" --first="$first" --last="$last" --duration=true >"$log" 2>&1 &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
cases=0
assertions=0
for log in "${ranges[@]}"; do
  if ! grep -q '^\[doctest\] Status: SUCCESS' "$log"; then
    status=1
    cat "$log"
  fi
  cases=$((cases + $(grep -c '^[0-9.]* s: ' "$log" || true)))
  assertions=$((assertions + $(sed -n 's/^\[doctest\] assertions: *\([0-9]*\).*/\1/p' "$log")))
done
echo "neon: $cases test cases run, $assertions assertions, status $status; the slowest:"
cat "${ranges[@]}" | grep -h '^[0-9.]* s: ' | sort -rn | head -n 5 | sed 's/^/neon:   /'
echo "neon: $((SECONDS - start)) s in all"
exit $status
