#!/usr/bin/env bash
# The demo's outputs pinned byte for byte: `fakequant test1 --demo` and `fakequant sweep --demo`
# (English and Traditional Chinese) must write exactly the files under tests/pipeline/golden/,
# apart from the work folder's path and step timings, which are replaced by DIR and T (with the
# padding before a timing, whose width follows the timing's).
#   demo_golden.sh PROGRAM GOLDEN_DIR           compare (exit 0 equal, 1 different, 77 skipped)
#   demo_golden.sh PROGRAM GOLDEN_DIR --update  rewrite GOLDEN_DIR from PROGRAM
# The evaluator's sums depend on the vector width, so the kernels are pinned to avx2 (skipped,
# visibly, on a CPU without it); the thread count is pinned too.
set -euo pipefail
program=$1 golden=$2 mode=${3:-compare}

for flag in avx2 fma f16c; do
  grep -qw "$flag" /proc/cpuinfo || { echo "FQ-SKIPPED: this CPU has no $flag"; exit 77; }
done
export FQ_FORCE_ARCH=avx2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/out

# run NAME ARGS...: one demo run into $work/NAME, its normalized outputs into $out/NAME.
run() {
  local name=$1
  shift
  local dir=$work/$name
  "$program" "$@" --workdir "$dir" --threads 2 >"$work/$name.stdout" 2>"$work/$name.stderr"
  mkdir -p "$out/$name"
  (cd "$dir/results" && find . -type f | sort) | while read -r f; do
    mkdir -p "$out/$name/$(dirname "$f")"
    normalize <"$dir/results/$f" >"$out/$name/$f"
  done
  normalize <"$work/$name.stdout" >"$out/$name/stdout.txt"
  normalize <"$work/$name.stderr" >"$out/$name/stderr.txt"
  # The files in data/ (models, text, checksum) by content.
  (cd "$dir/data" && sha256sum -- *) >"$out/$name/data.sha256"
}
normalize() {
  # A step's time and the padding before it vary in width (a slow machine, a sanitizer build).
  sed -E -e "s#$work/[a-z0-9-]+#DIR#g" -e 's/ +[0-9]+\.[0-9]+ s( +(ok|FAILED))/ T s\1/g'
}

run test1-en test1 --demo
run test1-zh test1 --demo --lang zh-TW
run sweep-en sweep --demo
run sweep-zh sweep --demo --lang zh-TW

if [ "$mode" = --update ]; then
  rm -rf "$golden"
  mkdir -p "$(dirname "$golden")"
  cp -r "$out" "$golden"
  echo "wrote $golden"
  exit 0
fi
if diff -ru "$golden" "$out"; then
  echo "demo outputs equal the golden files ($(find "$golden" -type f | wc -l) files)"
else
  echo "demo outputs differ from $golden (above); if the change is intended, rerun with --update"
  exit 1
fi
