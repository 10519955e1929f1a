#!/usr/bin/env bash
# Bounded libFuzzer runs (clang, ASan + UBSan), seeded with the real files. FUZZ_SECONDS per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
command -v clang++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang; }
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed' ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-14-dev; }
build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DFQ_BUILD_FUZZERS=ON -DFQ_BUILD_TESTS=OFF -DFQ_BUILD_BENCHMARKS=OFF -DFQ_BUILD_EXAMPLES=OFF \
  -DFQ_INSTALL=OFF -DFQ_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target gguf_reader_fuzz

corpus=$build/corpus/gguf
mkdir -p "$corpus"
shared=../shared/testdata
if [ -d "$shared" ]; then
  # Seeds: the real files, cut to the fuzzer's input limit so the header (where the parsing is) is kept.
  for f in "$shared"/gguf/*.gguf "$shared"/gguf-corrupted/*.gguf "$shared"/models/tl-mini-q8_0.gguf; do
    head -c 65536 "$f" > "$corpus/$(basename "$f")"
  done
else
  echo "fuzz: ../shared absent, starting from an empty corpus" >&2
fi
"$build/fuzz/gguf_reader_fuzz" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 15
