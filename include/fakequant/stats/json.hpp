// SPDX-License-Identifier: MIT
// JSON writers for the statistics results (opt-in: this header needs nlohmann/json, the rest of
// the library does not). NaN and infinities, which JSON cannot hold, are written as null.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>

#include "diff.hpp"
#include "distribution.hpp"
#include "paired.hpp"

namespace fq::stats {

namespace detail {
inline nlohmann::json number(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}
}  // namespace detail

/// A summary as JSON: count, finite, nan, inf, min, max, mean, std, quantiles (keyed by percent),
/// distinct, histogram.
inline nlohmann::json to_json(const summary& s) {
  using detail::number;
  nlohmann::json q = nlohmann::json::object();
  static constexpr const char* names[] = {"0.1", "1", "5", "25", "50", "75", "95", "99", "99.9"};
  for (std::size_t i = 0; i < s.quantiles.size(); ++i)
    q[names[i]] = s.finite ? number(s.quantiles[i]) : nlohmann::json();
  return {{"count", s.count},       {"finite", s.finite},      {"nan", s.nan},
          {"inf", s.inf},           {"min", number(s.min)},    {"max", number(s.max)},
          {"mean", number(s.mean)}, {"std", number(s.std)},    {"quantiles", q},
          {"distinct", s.distinct}, {"histogram", s.histogram}};
}

/// The distribution change as JSON.
inline nlohmann::json to_json(const distribution_change& c) {
  using detail::number;
  return {{"mean_shift", number(c.mean_shift)},
          {"std_shift", number(c.std_shift)},
          {"wasserstein1", number(c.wasserstein1)},
          {"histogram_overlap", number(c.histogram_overlap)}};
}

/// One tensor's comparison, with the keys of numerical_analysis.json.
inline nlohmann::json to_json(const tensor_diff& t) {
  using detail::number;
  const auto& p = t.paired;
  nlohmann::json change = to_json(t.distribution.change);
  change["histogram_edges"] = t.distribution.edges;
  return {{"name", t.name},
          {"type", t.type_b},
          {"type_a", t.type_a},
          {"shape", t.shape},
          {"count", p.count},
          {"finite_pairs", p.finite_pairs},
          {"changed", p.changed},
          {"max_abs_diff", number(p.max_abs_diff)},
          {"max_abs_diff_index", p.max_abs_diff_index},
          {"mean_abs_diff", number(p.mean_abs_diff)},
          {"max_rel_diff", number(p.max_rel_diff)},
          {"max_rel_diff_index", p.max_rel_diff_index},
          {"mean_rel_diff", number(p.mean_rel_diff)},
          {"rmse", number(p.rmse)},
          {"sqnr_db", number(p.sqnr_db)},
          {"cosine", number(p.cosine)},
          {"nan_a", p.nan_a},
          {"nan_b", p.nan_b},
          {"inf_a", p.inf_a},
          {"inf_b", p.inf_b},
          {"sign_flips", p.sign_flips},
          {"flushed_to_zero", p.flushed_to_zero},
          {"before", to_json(t.distribution.before)},
          {"after", to_json(t.distribution.after)},
          {"distribution_change", change}};
}

/// The whole report: numerical_analysis.json.
inline nlohmann::json to_json(const diff_report& r) {
  nlohmann::json ts = nlohmann::json::array();
  for (const auto& t : r.tensors) ts.push_back(to_json(t));
  return {{"a", r.a},
          {"b", r.b},
          {"epsilon", r.epsilon},
          {"metadata_identical", r.metadata_identical},
          {"structure_identical", r.structure_identical},
          {"metadata_differences", r.metadata_differences},
          {"structure_differences", r.structure_differences},
          {"tensors", ts}};
}

}  // namespace fq::stats
