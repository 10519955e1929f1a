#!/usr/bin/env bash
# The main job on its embedded default, with nothing but the build: a random-weight model is made,
# inspected, copied through the library, compared with its copy, evaluated (perplexity on a built-in
# text) and asked to generate. (The test-1 pipeline, `fakequant test1 --demo`, replaces this when
# it exists.)
set -euo pipefail
build=${1:-build}
fq="$build/fakequant"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "fakequant synth --preset tiny"
"$fq" synth --preset tiny --seed 7 "$out/model.gguf"
step "fakequant inspect"
"$fq" inspect "$out/model.gguf" | head -n 12
step "fakequant copy (byte-identical through the library)"
"$fq" copy "$out/model.gguf" "$out/copy.gguf"
cmp "$out/model.gguf" "$out/copy.gguf" && echo "copy is byte-identical"
step "fakequant diff model copy"
"$fq" diff "$out/model.gguf" "$out/copy.gguf" --all | head -n 8
step "fakequant perplexity (llama-perplexity's method, built-in text)"
for i in $(seq 1 40); do
  echo "The quick brown fox jumps over the lazy dog. Fake quantization rounds each weight to a narrower format and stores it back as float32, so the model keeps its structure."
done > "$out/text.txt"
"$fq" perplexity -m "$out/model.gguf" -f "$out/text.txt" -c 128 --chunks 4
step "fakequant generate (greedy)"
"$fq" generate -m "$out/model.gguf" -p "The quick brown fox" -n 16 --temp 0
