#!/usr/bin/env bash
# Every exhaustive sweep of the format kernels on all 2^32 float32 inputs, against the tests'
# integer reference (tests/format/integer_reference.hpp): the four hot formats, the hardware
# oracles, and every combination of every predefined format (rounding × overflow policy, and the
# subnormal flushes) - what CI covers a daily share of. README gives its measured time.
#   scripts/exhaustive.sh [FORMAT…]   (default: every predefined format)
# Environment: BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
scripts/setup.sh build >/dev/null
formats=("$@")
[ ${#formats[@]} -gt 0 ] ||
  formats=(bf16 fp16 fp8_e4m3 fp8_e5m2 fp8_e4m3fnuz fp8_e5m2fnuz fp6_e3m2 fp6_e2m3 fp4_e2m1 e8m0)
sweep=$build/tests/format/fq_format_sweep
start=$SECONDS
status=0
"$sweep" hot || status=1
"$sweep" oracles || status=1
for f in "${formats[@]}"; do
  FQ_SWEEP_ALL=1 "$sweep" all "$f" || status=1
done
echo "exhaustive: $((SECONDS - start)) s in all, $([ $status = 0 ] && echo "no mismatch" || echo "MISMATCHES above")"
exit $status
