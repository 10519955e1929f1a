#!/usr/bin/env bash
# The main job on its embedded default. Until the test-1 pipeline exists this shows the GGUF layer:
# inspect a model and copy it through the library, checking the copy is byte-identical.
set -euo pipefail
build=${1:-build}
model=$(dirname "$0")/../../shared/testdata/gguf/llama-2-tiny-random.gguf
[ -f "$model" ] || { echo "demo: $model not found (the shared test data sits beside the project)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/fakequant" inspect "$model"
"$build/fakequant" copy "$model" "$out/copy.gguf"
cmp "$model" "$out/copy.gguf" && echo "demo: copy is byte-identical to the input"
