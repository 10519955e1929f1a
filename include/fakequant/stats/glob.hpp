// SPDX-License-Identifier: MIT
// Tensor-name patterns: shell-style globs (`*`, `?`), several separated by commas.
#pragma once

#include <string_view>

namespace fq::stats {

/// True when `name` matches the glob `pattern` (`*` any run, `?` one character, the rest literal).
constexpr bool glob_match(std::string_view pattern, std::string_view name) noexcept {
  // Greedy matching with one backtrack point: linear in practice, never exponential.
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

/// True when `name` matches any of the comma-separated globs in `patterns`; an empty list matches
/// everything.
///
///     matches_any("blk.*.ffn_norm.weight,output_norm.weight", "blk.0.ffn_norm.weight")  // true
constexpr bool matches_any(std::string_view patterns, std::string_view name) noexcept {
  if (patterns.empty()) return true;
  while (true) {
    const std::size_t comma = patterns.find(',');
    if (glob_match(patterns.substr(0, comma), name)) return true;
    if (comma == std::string_view::npos) return false;
    patterns.remove_prefix(comma + 1);
  }
}

}  // namespace fq::stats
