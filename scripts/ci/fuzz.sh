#!/usr/bin/env bash
# Bounded libFuzzer runs (clang, ASan + UBSan), seeded with the real files: the GGUF reader, the
# tokenizer and the llama.cpp log parsers, FUZZ_SECONDS (default 60) each. Targets that need
# ../shared are skipped with a message when it is absent. A failing input is kept under
# build-fuzz/artifacts/ and fails the job.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
command -v clang++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang; }
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed' ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-14-dev; }
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(gguf_reader_fuzz tokenizer_fuzz llama_cpp_logs_fuzz)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DFQ_BUILD_FUZZERS=ON -DFQ_BUILD_TESTS=OFF -DFQ_BUILD_BENCHMARKS=OFF -DFQ_BUILD_EXAMPLES=OFF \
  -DFQ_INSTALL=OFF -DFQ_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

shared=${FQ_SHARED_DIR:-../shared}
have_shared=0
[ -d "$shared/testdata" ] && have_shared=1
mkdir -p "$build/artifacts"
status=0
# fuzz NAME MAX_LEN: runs build-fuzz/fuzz/NAME on build-fuzz/corpus/NAME for $seconds.
ran=0
fuzz() {
  local name=$1 max_len=$2 log="$build/$1.log"
  if [ ! -x "$build/fuzz/$name" ]; then
    echo "fuzz: $name FAILED: it was not built ($build/fuzz/$name)" >&2
    status=1
    return
  fi
  ran=$((ran + 1))
  if "$build/fuzz/$name" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "$build/corpus/$name" \
    >"$log" 2>&1; then
    echo "fuzz: $name: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
      "$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')/s," \
      "$(find "$build/corpus/$name" -type f | wc -l) corpus files, no failure"
  else
    tail -n 60 "$log"
    echo "fuzz: $name FAILED; the input is in $build/artifacts/" >&2
    status=1
  fi
}
# seed NAME FILE…: copies seeds into NAME's corpus (prefixed by `printf` format $prefix if set).
seed() {
  local name=$1
  shift
  mkdir -p "$build/corpus/$name"
  for f in "$@"; do
    { [ -n "${prefix:-}" ] && printf "$prefix"; head -c "${limit:-65536}" "$f"; } \
      >"$build/corpus/$name/$(basename "$f")"
  done
}

# GGUF reader: the real files cut to the input limit, so the header (where the parsing is) is kept.
mkdir -p "$build/corpus/gguf_reader_fuzz"
if [ $have_shared = 1 ]; then
  seed gguf_reader_fuzz "$shared"/testdata/gguf/*.gguf "$shared"/testdata/gguf-corrupted/*.gguf \
    "$shared"/testdata/models/tl-mini-q8_0.gguf
else
  echo "fuzz: ../shared absent, gguf_reader_fuzz starts from an empty corpus" >&2
fi
fuzz gguf_reader_fuzz 65536

# Tokenizer on the SentencePiece vocabulary llama.cpp tests with; seeds: llama.cpp's reference
# strings and pieces of WikiText, each after an option byte (0x01: add BOS).
if [ $have_shared = 1 ]; then
  export FQ_FUZZ_VOCAB="$shared/testdata/gguf/ggml-vocab-llama-spm.gguf"
  tmp=$(mktemp -d)
  if command -v jq >/dev/null; then
    jq -r '.tokenize.strings | to_entries[] | @base64 "\(.value.text)"' \
      "$shared/reference/tl-mini/llama.cpp-reference.json" | {
      i=0
      while read -r b; do
        printf '%s' "$b" | base64 -d >"$tmp/ref-$i" && i=$((i + 1))
      done
    }
  fi
  # Inputs of 1 KiB: tokenizer faults are local, and short inputs give many more runs.
  head -c 16384 "$shared/testdata/text/wiki.test.small.raw" | split -b 1024 - "$tmp/wiki-"
  prefix='\001' limit=1023 seed tokenizer_fuzz "$tmp"/*
  rm -rf "$tmp"
  fuzz tokenizer_fuzz 1024
else
  echo "fuzz: SKIPPED tokenizer_fuzz: ../shared (the vocabulary it is built from) is absent" >&2
fi

# llama.cpp log parsers, seeded with llama.cpp's own logs.
if [[ " ${targets[*]} " == *" llama_cpp_logs_fuzz "* ]]; then
  if [ $have_shared = 1 ]; then
    seed llama_cpp_logs_fuzz "$shared"/reference/tl-mini/llama.cpp-logs/* \
      "$shared"/reference/tl-mini/kld-base/*.log
    fuzz llama_cpp_logs_fuzz 65536
  else
    echo "fuzz: SKIPPED llama_cpp_logs_fuzz: ../shared (the logs it is seeded from) is absent" >&2
  fi
fi
# Under CI every fuzzer runs (.ci/run has made sure ../shared is there): one that did not is a failure.
if [ "$ran" -ne ${#targets[@]} ]; then
  echo "fuzz: $ran of ${#targets[@]} fuzzers ran" >&2
  [ "${CI:-}" = true ] && status=1
fi
exit $status
