// SPDX-License-Identifier: MIT
// Tensor-name patterns: exact names or shell globs (`*`, `?`, `[0-3]`, `[!x]`), and the names
// closest to a pattern that matched nothing, for the error message.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace fq::gguf {

namespace detail {
// Matches one bracket expression at pattern[p] (after '['); returns the position after ']' and
// whether `c` is in the set, or npos for an unterminated bracket (then '[' is literal).
inline std::size_t match_class(std::string_view pat, std::size_t p, char c, bool& in) noexcept {
  bool negate = false;
  if (p < pat.size() && (pat[p] == '!' || pat[p] == '^')) {
    negate = true;
    ++p;
  }
  bool found = false, first = true;
  while (p < pat.size() && (pat[p] != ']' || first)) {
    first = false;
    if (p + 2 < pat.size() && pat[p + 1] == '-' && pat[p + 2] != ']') {
      found |= pat[p] <= c && c <= pat[p + 2];
      p += 3;
    } else {
      found |= pat[p] == c;
      ++p;
    }
  }
  if (p >= pat.size()) return std::string_view::npos;
  in = found != negate;
  return p + 1;
}
}  // namespace detail

/// True when `name` matches the glob `pattern`.
inline bool glob_match(std::string_view pat, std::string_view name) noexcept {
  std::size_t p = 0, n = 0, star_p = std::string_view::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star_p = ++p;
      star_n = n;
      continue;
    }
    if (p < pat.size()) {
      if (pat[p] == '?') {
        ++p, ++n;
        continue;
      }
      if (pat[p] == '[') {
        bool in = false;
        const auto after = detail::match_class(pat, p + 1, name[n], in);
        if (after != std::string_view::npos) {
          if (in) {
            p = after, ++n;
            continue;
          }
        } else if (name[n] == '[') {
          ++p, ++n;
          continue;
        }
      } else if (pat[p] == name[n]) {
        ++p, ++n;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    n = ++star_n;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

/// Splits "a,b,c" into patterns (empty pieces dropped).
inline std::vector<std::string> split_patterns(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const auto piece =
        list.substr(start, comma == std::string_view::npos ? list.npos : comma - start);
    if (!piece.empty()) out.emplace_back(piece);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

/// Levenshtein distance (for suggestions).
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = row[0]++;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

/// Up to `k` of `names` closest to `pattern`, closest first.
template <class Names>
std::vector<std::string> closest_names(std::string_view pattern, const Names& names,
                                       std::size_t k = 3) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& n : names) scored.emplace_back(edit_distance(pattern, n), std::string(n));
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < k; ++i) out.push_back(scored[i].second);
  return out;
}

}  // namespace fq::gguf
