// SPDX-License-Identifier: MIT
// Distribution summaries of one tensor (min, max, mean, std, exact quantiles, distinct values,
// histogram) and the change between an original and its quantized copy (shift of mean and std,
// Wasserstein-1 distance, histogram overlap). Only finite values take part; NaN and Inf are
// counted. All results are deterministic: single-threaded, exact or fixed-order sums.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "exact_sum.hpp"

namespace fq::stats {

/// The quantile levels the summaries report: 0.1, 1, 5, 25, 50, 75, 95, 99 and 99.9 %.
inline constexpr std::array<double, 9> default_probabilities{0.001, 0.01, 0.05, 0.25, 0.5,
                                                             0.75,  0.95, 0.99, 0.999};

/// Summary of the values of one side.
struct summary {
  std::uint64_t count = 0;   ///< all values
  std::uint64_t finite = 0;  ///< values taking part below
  std::uint64_t nan = 0, inf = 0;
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
  double mean = std::numeric_limits<double>::quiet_NaN();        ///< exact mean, rounded once
  double std = std::numeric_limits<double>::quiet_NaN();         ///< population (numpy ddof=0)
  std::array<double, default_probabilities.size()> quantiles{};  ///< at default_probabilities
  std::uint64_t distinct = 0;            ///< distinct finite values (+0 and -0 are one)
  std::vector<std::uint64_t> histogram;  ///< counts per bin of the comparison's edges
};

/// How the distribution moved from `before` to `after`.
struct distribution_change {
  double mean_shift = std::numeric_limits<double>::quiet_NaN();    ///< after.mean - before.mean
  double std_shift = std::numeric_limits<double>::quiet_NaN();     ///< after.std - before.std
  double wasserstein1 = std::numeric_limits<double>::quiet_NaN();  ///< ∫|F_after - F_before|
  double histogram_overlap = std::numeric_limits<double>::quiet_NaN();  ///< Σ min(p, q), in [0, 1]
};

/// Both summaries over the same histogram edges, and the change between them.
struct distribution_comparison {
  summary before, after;
  std::vector<double> edges;  ///< bins + 1 increasing edges; the last bin is closed
  distribution_change change;
};

namespace detail {

// Order-preserving key of a float's bits: unsigned comparison of keys = comparison of values
// (with -0 just below +0).
FQ_FORCE_INLINE std::uint32_t order_key(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  return (u >> 31) ? ~u : (u | 0x80000000u);
}

/// Keeps only the finite values of `v` (in order), counting the others into `s`.
inline void keep_finite(std::vector<float>& v, summary& s) {
  s.count = v.size();
  std::size_t k = 0;
  for (float f : v) {
    const std::uint32_t m = std::bit_cast<std::uint32_t>(f) & 0x7FFFFFFFu;
    if (m < 0x7F800000u) {
      v[k++] = f;
    } else {
      s.nan += m > 0x7F800000u;
      s.inf += m == 0x7F800000u;
    }
  }
  v.resize(k);
  s.finite = k;
}

/// Sorts finite floats by value in linear time: two 16-bit LSD radix passes over order keys,
/// computed on the fly, with one scratch buffer of the same size.
inline void radix_sort(std::vector<float>& v) {
  std::vector<float> tmp(v.size());
  for (int pass = 0; pass < 2; ++pass) {
    const int sh = 16 * pass;
    std::vector<std::size_t> pos(65537, 0);
    for (float f : v) ++pos[((order_key(f) >> sh) & 0xFFFFu) + 1];
    for (std::size_t i = 1; i < pos.size(); ++i) pos[i] += pos[i - 1];
    for (float f : v) tmp[pos[(order_key(f) >> sh) & 0xFFFFu]++] = f;
    v.swap(tmp);
  }
}

/// Exact sum of floats: 256-value blocks whose nonzero exponents span at most 20 binades are summed
/// in float64 exactly (every value a multiple of the smallest unit, the total below 2^53 units);
/// other blocks go value by value into the exact accumulator.
inline exact_sum exact_float_sum(std::span<const float> x) noexcept {
  exact_sum s;
  std::size_t i = 0;
  for (; i + 256 <= x.size(); i += 256) {
    std::uint32_t hi = 0, lo = 0x7FFFFFFFu;
    for (std::size_t k = i; k < i + 256; ++k) {
      const std::uint32_t m = std::bit_cast<std::uint32_t>(x[k]) & 0x7FFFFFFFu;
      hi = std::max(hi, m);
      lo = std::min(lo, m ? m : 0x7FFFFFFFu);
    }
    if (static_cast<int>(hi >> 23) - std::max(static_cast<int>(lo >> 23), 1) <= 20 &&
        hi < 0x7F800000u) {
      double b = 0;
      for (std::size_t k = i; k < i + 256; ++k) b += x[k];
      s.add(b);
    } else {
      for (std::size_t k = i; k < i + 256; ++k) s.add(x[k]);
    }
  }
  for (; i < x.size(); ++i) s.add(x[i]);
  return s;
}

/// numpy's linear interpolation between order statistics lo and hi at fraction t, done the way
/// numpy does it (from the nearer end) so the results agree bit for bit.
FQ_FORCE_INLINE double lerp(double a, double b, double t) noexcept {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/// numpy's virtual index for the linear method (alpha = beta = 1), evaluated in its order:
/// n·p + (1 - p) - 1, then split into the lower order statistic and the fraction.
FQ_FORCE_INLINE std::pair<std::size_t, double> virtual_index(std::size_t n, double p) noexcept {
  const double h = (static_cast<double>(n) * p + (1.0 + p * (1.0 - 1.0 - 1.0))) - 1.0;
  const double lo = std::clamp(std::floor(h), 0.0, static_cast<double>(n - 1));
  return {static_cast<std::size_t>(lo), std::clamp(h - lo, 0.0, 1.0)};
}

/// Fills min, max, mean, std, quantiles and distinct from sorted finite values.
inline void summarize_sorted(const std::vector<float>& v, summary& s) {
  if (v.empty()) return;
  const auto n = v.size();
  s.min = v.front();
  s.max = v.back();
  const exact_sum total = exact_float_sum(v);
  s.mean = exact_mean(total, n);
  // Two-pass variance about the rounded mean m, corrected by the exact residual R = Σx - n·m:
  // Σ(x-μ)² = Σ(x-m)² - R²/n.
  const double m = s.mean;
  exact_sum sq;
  for (std::size_t i = 0; i < n; i += 256) {
    double b = 0;
    for (std::size_t k = i; k < std::min(n, i + 256); ++k) {
      const double d = v[k] - m;
      b += d * d;
    }
    sq.add(b);
  }
  exact_sum r = total;
  r.add_product(-m, static_cast<double>(n));
  const double rd = r.value();
  const double var =
      std::max(0.0, (sq.value() - rd * rd / static_cast<double>(n)) / static_cast<double>(n));
  s.std = std::sqrt(var);
  for (std::size_t q = 0; q < default_probabilities.size(); ++q) {
    const auto [lo, t] = virtual_index(n, default_probabilities[q]);
    s.quantiles[q] = lerp(v[lo], v[std::min(lo + 1, n - 1)], t);
  }
  s.distinct = 1;
  for (std::size_t i = 1; i < n; ++i) s.distinct += v[i] != v[i - 1];
}

/// Bin of x for increasing `edges` (numpy.histogram's rule: half-open bins, the last closed).
inline std::size_t bin_of(double x, const std::vector<double>& edges) noexcept {
  const std::size_t bins = edges.size() - 1;
  const double lo = edges.front(), hi = edges.back();
  auto k = static_cast<std::size_t>(std::clamp((x - lo) / (hi - lo) * static_cast<double>(bins),
                                               0.0, static_cast<double>(bins - 1)));
  while (k > 0 && x < edges[k]) --k;  // the division may land one bin off
  while (k + 1 < bins && x >= edges[k + 1]) ++k;
  return k;
}

inline std::vector<std::uint64_t> histogram_of(const std::vector<float>& v,
                                               const std::vector<double>& edges) {
  std::vector<std::uint64_t> h(edges.size() - 1, 0);
  for (float x : v)
    if (x >= edges.front() && x <= edges.back()) ++h[bin_of(x, edges)];
  return h;
}

inline std::vector<double> equal_edges(double lo, double hi, std::size_t bins) {
  if (!(lo < hi)) lo -= 0.5, hi += 0.5;  // numpy's choice for a single value
  std::vector<double> e(bins + 1);
  for (std::size_t i = 0; i <= bins; ++i)
    e[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(bins);
  e.back() = hi;
  return e;
}

/// ∫|F_a - F_b| dx for sorted a and b, both nonempty.
inline double wasserstein1_sorted(const std::vector<float>& a, const std::vector<float>& b) {
  const auto na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  // Between consecutive breakpoints x < y of the merged data, |F_a - F_b| is constant:
  // |ca·nb - cb·na| / (na·nb), with ca, cb the counts ≤ x. The numerators are exact integers.
  exact_sum w;
  std::size_t i = 0, j = 0;
  double x = std::min<double>(a.front(), b.front());
  while (i < a.size() || j < b.size()) {
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    if (i == a.size() && j == b.size()) break;
    const double y = std::min(i < a.size() ? static_cast<double>(a[i]) : INFINITY,
                              j < b.size() ? static_cast<double>(b[j]) : INFINITY);
    const std::uint64_t l = i * b.size(), r = j * a.size();  // exact below 2^64
    const auto diff = static_cast<double>(l > r ? l - r : r - l);
    if (diff != 0) w.add(diff * (y - x));
    x = y;
  }
  return w.value() / na / nb;
}

/// Places v[r] for every rank r in ranks[rf, rl) (sorted, inside [first, last)) where a full sort
/// would put it.
inline void multi_select(std::vector<float>& v, std::size_t first, std::size_t last,
                         const std::vector<std::size_t>& ranks, std::size_t rf, std::size_t rl) {
  if (rf >= rl || first >= last) return;
  const std::size_t mid = rf + (rl - rf) / 2, r = ranks[mid];
  const auto it = [&](std::size_t i) { return v.begin() + static_cast<std::ptrdiff_t>(i); };
  std::nth_element(it(first), it(r), it(last));
  multi_select(v, first, r, ranks, rf, mid);
  multi_select(v, r + 1, last, ranks, mid + 1, rl);
}

}  // namespace detail

/// Quantiles of the finite values of `x` at `probs` (each in [0, 1]) by numpy's default linear
/// method, found by selection (nested std::nth_element on a copy), not by sorting. NaN for no
/// values.
///
///     auto q = fq::stats::quantiles(values, fq::stats::default_probabilities);
inline std::vector<double> quantiles(std::span<const float> x, std::span<const double> probs) {
  summary ignored;
  std::vector<float> v(x.begin(), x.end());
  detail::keep_finite(v, ignored);
  std::vector<double> out(probs.size(), std::numeric_limits<double>::quiet_NaN());
  if (v.empty()) return out;
  const std::size_t n = v.size();
  // Every order statistic needed (the lower one and its successor for each level), placed by a
  // divide-and-conquer multi-selection: select the middle rank, then recurse on each side with
  // the ranks that fall there. O(n log k) for k ranks, against O(n log n) for a sort.
  std::vector<std::size_t> ranks;
  for (double p : probs) {
    const auto lo = detail::virtual_index(n, p).first;
    ranks.push_back(lo);
    if (lo + 1 < n) ranks.push_back(lo + 1);
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  detail::multi_select(v, 0, n, ranks, 0, ranks.size());
  for (std::size_t q = 0; q < probs.size(); ++q) {
    const auto [lo, t] = detail::virtual_index(n, probs[q]);
    out[q] = detail::lerp(v[lo], v[std::min(lo + 1, n - 1)], t);
  }
  return out;
}

/// Summary of one side with its own `bins` equal-width histogram bins over [min, max].
inline summary summarize(std::span<const float> x, std::size_t bins = 64) {
  summary s;
  std::vector<float> v(x.begin(), x.end());
  detail::keep_finite(v, s);
  detail::radix_sort(v);
  detail::summarize_sorted(v, s);
  if (!v.empty())
    s.histogram = detail::histogram_of(v, detail::equal_edges(v.front(), v.back(), bins));
  return s;
}

/// Summaries of `before` and `after` over common histogram edges (`bins` equal bins spanning both),
/// and the change between them. The two sides may differ in length. This overload reuses the two
/// vectors' storage (they are sorted in place), so the peak memory is that of the data plus one
/// scratch copy of the larger side.
inline distribution_comparison compare_distributions(std::vector<float> a, std::vector<float> b,
                                                     std::size_t bins = 64) {
  distribution_comparison c;
  // The two sides are independent: the second on its own thread when it is large enough to pay
  // for one. Each side's arithmetic is the same either way.
  auto side = [](std::vector<float>& v, summary& s) {
    detail::keep_finite(v, s);
    detail::radix_sort(v);
    detail::summarize_sorted(v, s);
  };
  if (b.size() >= (std::size_t{1} << 20) && std::thread::hardware_concurrency() > 1) {
    std::thread other([&] { side(b, c.after); });
    side(a, c.before);
    other.join();
  } else {
    side(a, c.before);
    side(b, c.after);
  }
  if (a.empty() && b.empty()) return c;
  const double lo = std::min(a.empty() ? INFINITY : a.front(), b.empty() ? INFINITY : b.front());
  const double hi = std::max(a.empty() ? -INFINITY : a.back(), b.empty() ? -INFINITY : b.back());
  c.edges = detail::equal_edges(lo, hi, bins);
  c.before.histogram = detail::histogram_of(a, c.edges);
  c.after.histogram = detail::histogram_of(b, c.edges);
  if (a.empty() || b.empty()) return c;
  c.change.mean_shift = c.after.mean - c.before.mean;
  c.change.std_shift = c.after.std - c.before.std;
  c.change.wasserstein1 = detail::wasserstein1_sorted(a, b);
  // Overlap of the two normalised histograms: Σ min(p_k, q_k), exact in integers until the end.
  exact_sum overlap;
  const auto na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  for (std::size_t k = 0; k < bins; ++k)
    overlap.add(std::min(static_cast<double>(c.before.histogram[k]) * nb,
                         static_cast<double>(c.after.histogram[k]) * na));
  c.change.histogram_overlap = overlap.value() / na / nb;
  return c;
}

/// As above, for data the caller keeps: works on copies.
inline distribution_comparison compare_distributions(std::span<const float> before,
                                                     std::span<const float> after,
                                                     std::size_t bins = 64) {
  return compare_distributions(std::vector<float>(before.begin(), before.end()),
                               std::vector<float>(after.begin(), after.end()), bins);
}

}  // namespace fq::stats
