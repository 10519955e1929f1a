// SPDX-License-Identifier: MIT
// The go / caution / stop decision of test 1 (../shared/docs/test1-plan.md): each criterion's band,
// the scenario as the worst of the three columns, must-pass failures as pessimistic.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../utf8.hpp"

namespace fq::plan {

/// The plan's scenarios, in increasing severity.
enum class scenario { optimistic = 0, medium = 1, pessimistic = 2 };
enum class verdict { go, caution, stop };

constexpr std::string_view to_string(scenario s) noexcept {
  return s == scenario::optimistic ? "optimistic"
         : s == scenario::medium   ? "medium"
                                   : "pessimistic";
}
constexpr std::string_view to_string(verdict v) noexcept {
  return v == verdict::go ? "GO" : v == verdict::caution ? "CAUTION" : "STOP";
}
constexpr verdict verdict_of(scenario s) noexcept {
  return s == scenario::optimistic ? verdict::go
         : s == scenario::medium   ? verdict::caution
                                   : verdict::stop;
}

/// Numerical difference: within the limits (mean < 1 %, max < 10 %), larger but acceptable
/// (mean < 1 %, max ≥ 10 %), too large (mean ≥ 1 %, or any NaN/Inf).
constexpr scenario numerical_band(double mean_rel, double max_rel, bool nan_or_inf) noexcept {
  if (nan_or_inf || !(mean_rel < 0.01)) return scenario::pessimistic;
  return max_rel < 0.10 ? scenario::optimistic : scenario::medium;
}

/// Perplexity increase x = (PPL_fake − PPL_original) / PPL_original: < 1 %, 1–5 %, ≥ 5 %; a
/// decrease counts as < 1 %.
constexpr scenario perplexity_band(double increase) noexcept {
  if (!(increase < 0.05)) return scenario::pessimistic;
  return increase < 0.01 ? scenario::optimistic : scenario::medium;
}

/// Conversation: any automatic-check failure (where the original passes) is abnormal; otherwise
/// agreement ≥ 0.5 is a slight drop, below it a clear but not severe drop.
constexpr scenario conversation_band(std::size_t failures, double agreement) noexcept {
  if (failures > 0) return scenario::pessimistic;
  return agreement >= 0.5 ? scenario::optimistic : scenario::medium;
}

struct must_pass {
  bool loads = true;           ///< the model loads without error
  bool inference = true;       ///< basic inference produces tokens
  bool stable = true;          ///< no NaN or Inf
  bool format_correct = true;  ///< the output's structure matches the original
  constexpr bool all() const noexcept { return loads && inference && stable && format_correct; }
};

struct outcome {
  scenario numerical, conversation, perplexity, overall;
  verdict decision;
};

/// The worst of the three columns decides; a must-pass failure is pessimistic.
constexpr outcome decide(const must_pass& m, scenario numerical, scenario conversation,
                         scenario perplexity) noexcept {
  scenario worst = std::max({numerical, conversation, perplexity});
  if (!m.all()) worst = scenario::pessimistic;
  return {numerical, conversation, perplexity, worst, verdict_of(worst)};
}

/// Degenerate repetition (outputs of at least 12 tokens): the most frequent token 3-gram, counted
/// with overlaps, times 3, covers more than half of the generated tokens.
inline bool degenerate_repetition(std::span<const std::int32_t> tokens) {
  if (tokens.size() < 12) return false;
  std::map<std::array<std::int32_t, 3>, std::size_t> counts;
  std::size_t best = 0;
  for (std::size_t i = 0; i + 3 <= tokens.size(); ++i)
    best = std::max(best, ++counts[{tokens[i], tokens[i + 1], tokens[i + 2]}]);
  return 3 * best > tokens.size() / 2.0;
}

/// Agreement of one prompt: the index of the first generated token where the two greedy runs
/// differ (the whole length if none) over the number the original generated.
inline double agreement(std::span<const std::int32_t> original,
                        std::span<const std::int32_t> fake) {
  if (original.empty()) return 1.0;
  std::size_t i = 0;
  while (i < original.size() && i < fake.size() && original[i] == fake[i]) ++i;
  return static_cast<double>(i) / static_cast<double>(original.size());
}

/// The automatic checks of one output.
struct output_checks {
  bool non_empty, valid_utf8, finite_logits, not_degenerate;
  bool all() const noexcept { return non_empty && valid_utf8 && finite_logits && not_degenerate; }
};

inline output_checks check_output(std::string_view text, std::span<const std::int32_t> tokens,
                                  bool finite_logits) {
  return {!tokens.empty() && !text.empty(),
          fq::valid_utf8(reinterpret_cast<const unsigned char*>(text.data()), text.size()),
          finite_logits, !degenerate_repetition(tokens)};
}

/// Failures that count against the fake-quantized model: checks it fails where the original passes.
inline std::size_t failures_against(const output_checks& original, const output_checks& fake) {
  return (original.non_empty && !fake.non_empty) + (original.valid_utf8 && !fake.valid_utf8) +
         (original.finite_logits && !fake.finite_logits) +
         (original.not_degenerate && !fake.not_degenerate);
}

/// Two-sided Student-t quantile for `dof` degrees of freedom at level 0.95 or 0.99 (a table to 20,
/// then the first Cornish–Fisher correction of the normal quantile, within 0.3 % beyond).
inline double student_t(std::size_t dof, double level) {
  static constexpr double t95[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447,
                                   2.365, 2.306,  2.262, 2.228, 2.201, 2.179, 2.160,
                                   2.145, 2.131,  2.120, 2.110, 2.101, 2.093, 2.086};
  static constexpr double t99[] = {0,     63.657, 9.925, 5.841, 4.604, 4.032, 3.707,
                                   3.499, 3.355,  3.250, 3.169, 3.106, 3.055, 3.012,
                                   2.977, 2.947,  2.921, 2.898, 2.878, 2.861, 2.845};
  const bool high = level > 0.97;
  if (dof >= 1 && dof <= 20) return high ? t99[dof] : t95[dof];
  const double z = high ? 2.5758 : 1.95996;
  return z + (z * z * z + z) / (4.0 * static_cast<double>(dof));
}

/// Interval on the perplexity ratio − 1 from per-chunk mean differences of negative
/// log-likelihoods (fake − original): a Student-t interval on their mean, exponentiated. Chunks are
/// the unit because tokens within a chunk are not independent.
struct interval {
  double lo = 0, hi = 0;
};
inline interval ratio_interval(std::span<const double> chunk_delta, double level) {
  const std::size_t n = chunk_delta.size();
  if (n < 2) return {-1e300, 1e300};
  double m = 0;
  for (double d : chunk_delta) m += d;
  m /= static_cast<double>(n);
  double v = 0;
  for (double d : chunk_delta) v += (d - m) * (d - m);
  const double half =
      student_t(n - 1, level) * std::sqrt(v / static_cast<double>(n - 1) / static_cast<double>(n));
  return {std::exp(m - half) - 1, std::exp(m + half) - 1};
}

/// --until-confident: after at least 4 chunks, stop once the 99 % interval lies inside one band of
/// the perplexity column (the stricter level pays for looking after every chunk).
inline bool confident(std::span<const double> chunk_delta) {
  if (chunk_delta.size() < 4) return false;
  const auto i = ratio_interval(chunk_delta, 0.99);
  return perplexity_band(i.lo) == perplexity_band(i.hi);
}

}  // namespace fq::plan
