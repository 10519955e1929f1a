#!/usr/bin/env bash
# No function over 100 lines in include/ and examples/, as pmccabe counts them. pmccabe (a C
# parser) silently reports nothing for a file with C++17 nested namespaces (`namespace a::b {`),
# so each file is measured through a copy with those spelled as nested blocks, and a file in which
# it finds no function at all is an error rather than a pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=${FQ_FUNCTION_LINES:-100}
if ! command -v pmccabe >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pmccabe >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/prep.pl" <<'PERL'
s#^namespace ([\w:]+) \{#join(" ", map { "namespace $_ {" } split(/::/, $1))#e;
s#^\}  // namespace ([\w:]+)$#"}" x scalar(my @p = split(/::/, $1))#e;
s#\bnoexcept(\([^()]*\))?##g;
s#\[\[[^\]]*\]\]##g;
s#__attribute__\(\([^()]*(\([^()]*\))?[^()]*\)\)##g;
s#\b(FQ_FORCE_INLINE|constexpr|consteval|override|final)\b##g;
s#\benum class\b#enum#g;
PERL
long=0 files=0 unparsed=()
while IFS= read -r f; do
  copy=$tmp/$(echo "$f" | tr / _)
  perl -p "$tmp/prep.pl" "$f" >"$copy"
  if pmccabe "$copy" 2>&1 >/dev/null | grep -q .; then
    unparsed+=("$f")
    continue
  fi
  out=$(pmccabe -v "$copy" 2>/dev/null | grep -v '^|' || true)
  [ -n "$out" ] || continue  # declarations only
  files=$((files + 1))
  while IFS=$'\t' read -r _ _ _ _ lines where; do
    [[ "$lines" =~ ^[0-9]+$ ]] || continue
    if [ "$lines" -gt "$limit" ]; then
      echo "function_length: ${where/$copy/$f}: $lines lines (limit $limit)"
      long=$((long + 1))
    fi
  done <<<"$out"
done < <(git ls-files 'include/*.hpp' 'examples/*.cpp' 'examples/*.hpp')
for f in "${unparsed[@]}"; do echo "function_length: pmccabe cannot parse $f"; done
echo "function_length: $files files measured, $long functions over $limit lines, ${#unparsed[@]} files unparsed"
[ "$long" -eq 0 ] && [ ${#unparsed[@]} -eq 0 ]
