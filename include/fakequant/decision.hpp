// SPDX-License-Identifier: MIT
// The go / caution / stop decision of test 1 (../shared/docs/test1-plan.md): each criterion's band,
// the scenario as the worst of the three columns, must-pass failures as pessimistic.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "detail/bytes.hpp"

namespace fq::decision {

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
          fq::detail::valid_utf8(reinterpret_cast<const unsigned char*>(text.data()), text.size()),
          finite_logits, !degenerate_repetition(tokens)};
}

/// Failures that count against the fake-quantized model: checks it fails where the original passes.
inline std::size_t failures_against(const output_checks& original, const output_checks& fake) {
  return (original.non_empty && !fake.non_empty) + (original.valid_utf8 && !fake.valid_utf8) +
         (original.finite_logits && !fake.finite_logits) +
         (original.not_degenerate && !fake.not_degenerate);
}

}  // namespace fq::decision
