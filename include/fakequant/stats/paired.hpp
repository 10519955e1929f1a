// SPDX-License-Identifier: MIT
// Paired reducers: every difference statistic of an original tensor `a` and its quantized copy `b`
// in one pass, SIMD and multithreaded, with a result that does not depend on the thread count, the
// chunking into threads or the instruction set.
//
// How the result is made independent of all three:
// - Data is cut into blocks of `block_size` elements at fixed positions. Every per-block value is
//   computed with the same 8 "virtual lanes" (element i of a block always goes to lane i % 8, and
//   each lane adds its elements in index order), whatever the SIMD width, and lanes are combined
//   in a fixed order.
// - Block values go into exact accumulators (exact_sum), whose additions are associative, so the
//   order of blocks and threads does not matter.
// - Σ|a-b| and Σab are exact: a block takes the SIMD path only when the exponents of its nonzero
//   values span at most `fast_span` binades, which makes a-b and every float64 addition of |a-b|
//   in it exact, and lets Σab be held exactly in two parts (paired_block says why). A block that
//   is not fast (wide range, NaN, Inf, a ratio overflowing) is halved and its halves tried again
//   down to 64 elements; what still fails takes the scalar path, which adds every term exactly.
// - The relative differences (all ≥ 0) are summed with Fast2Sum of (max, min), error-free, so the
//   block sums carry an error near 2^-100 relative: the mean is the exactly rounded value except
//   within that distance of a rounding boundary. Sums of squares (RMSE, SQNR, std) are plain
//   per-lane float64 sums, a relative error below 2^-44.
// - Bit-identity across instruction sets assumes no fused multiply-add contraction: build with
//   -ffp-contract=off (the project's targets do), as GCC contracts a*b+c by default under -mfma.
//   The kernel fuses only a² and b², which are exact, so fusing them changes nothing.
// - The kernel (paired_blocks<Arch>, stats/paired_kernels.hpp) is reached through a function
//   pointer, kernel_table, so the instruction set is picked at run time (stats/dispatch.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "../error.hpp"
#include "dispatch.hpp"
#include "exact_sum.hpp"
#include "paired_kernels.hpp"

namespace fq::stats {

/// Options of the paired reducer.
struct paired_options {
  double epsilon = 1e-8;      ///< ε of the relative difference |a-b| / (|a| + ε)
  unsigned threads = 0;       ///< 0: std::thread::hardware_concurrency()
  bool force_scalar = false;  ///< take the scalar (exact) path everywhere: the tests' oracle
  /// The kernels (stats/dispatch.hpp); unset: best_kernels(), this CPU's best or FQ_FORCE_ARCH's,
  /// chosen when the reducer is made. Every kernel gives the same bits.
  std::optional<kernel_table> kernels{};
};

/// Difference statistics of a pair of equally long float arrays. Pairs where either side is NaN
/// or Inf are counted (nan_*, inf_*, changed) but left out of every other statistic, whose
/// denominators are `finite_pairs`. Undefined values (a mean of nothing, the cosine of a zero
/// vector) are NaN; the SQNR of identical arrays is +Inf.
struct paired_stats {
  double epsilon = 1e-8;
  std::uint64_t count = 0;         ///< pairs
  std::uint64_t finite_pairs = 0;  ///< pairs with both sides finite
  std::uint64_t changed = 0;       ///< pairs whose bit patterns differ
  std::uint64_t nan_a = 0, nan_b = 0, inf_a = 0, inf_b = 0;
  std::uint64_t sign_flips = 0;          ///< both nonzero, opposite signs
  std::uint64_t flushed_to_zero = 0;     ///< a nonzero, b zero (either sign)
  double max_abs_diff = 0;               ///< max |a-b| (each rounded to float64)
  std::uint64_t max_abs_diff_index = 0;  ///< first index where it occurs
  double mean_abs_diff = std::numeric_limits<double>::quiet_NaN();
  double max_rel_diff = 0;  ///< max |a-b| / (|a| + ε)
  std::uint64_t max_rel_diff_index = 0;
  double mean_rel_diff = std::numeric_limits<double>::quiet_NaN();
  double rmse = std::numeric_limits<double>::quiet_NaN();
  double sqnr_db = std::numeric_limits<double>::quiet_NaN();  ///< 10 log10(Σa² / Σ(a-b)²)
  double cosine = std::numeric_limits<double>::quiet_NaN();
  double sum_sq_a = 0, sum_sq_b = 0, sum_sq_diff = 0, dot = 0;
};

namespace detail {

/// Folds the kernel's result for the 2^log2n elements at a, b into p. A block that is not fast is
/// halved and each half tried again, down to 2^split_log2 elements, which take the exact path.
inline void take_block(const kernel_table& kernel, paired_partial& p, const block_result& r,
                       const float* a, const float* b, std::uint64_t index0, double eps,
                       int log2n = block_log2) noexcept {
  const std::size_t n = std::size_t{1} << log2n;
  if (!r.fast) {
    if (log2n > split_log2 && kernel.part) {  // a kernel built by hand may lack `part`
      const std::size_t half = n / 2;
      for (std::size_t off : {std::size_t{0}, half}) {
        block_result sub;
        kernel.part(a + off, b + off, log2n - 1, eps, &sub);
        take_block(kernel, p, sub, a + off, b + off, index0 + off, eps, log2n - 1);
      }
      return;
    }
    for (std::size_t k = 0; k < n; ++k) scalar_pair(p, a[k], b[k], index0 + k, eps);
    return;
  }
  p.count += n, p.finite += n;
  p.changed += r.changed, p.flips += r.flips, p.flushed += r.flushed;
  p.s_absd.add(r.absd);
  p.s_aa.add(r.aa), p.s_bb.add(r.bb), p.s_dd.add(r.dd);
  p.s_ab.add(r.ab), p.s_ab.add(r.ab_err);
  p.s_rel.add(r.rel), p.s_rel.add(r.rel_err);
  // Where the maxima first occur: rare once they have settled. The same float64 operations as
  // the kernel's, so the values compare equal.
  if (r.max_d > p.max_d)
    for (std::size_t i = 0; i < n; ++i)
      if (std::fabs(double{a[i]} - b[i]) == r.max_d) {
        p.take_max_d(r.max_d, index0 + i);
        break;
      }
  if (r.max_r > p.max_r)
    for (std::size_t i = 0; i < n; ++i)
      if (std::fabs(double{a[i]} - b[i]) / (std::fabs(double{a[i]}) + eps) == r.max_r) {
        p.take_max_r(r.max_r, index0 + i);
        break;
      }
}

/// Elements [first, last) of a and b (`base` is the global index of element 0): full blocks
/// through the kernel, a last partial block through the scalar path.
inline void reduce_range(const kernel_table& kernel, paired_partial& p, const float* a,
                         const float* b, std::size_t first, std::size_t last, std::uint64_t base,
                         const paired_options& o) noexcept {
  const double eps = o.epsilon;
  std::size_t i = first;
  if (!o.force_scalar && eps > 0) {
    constexpr std::size_t chunk = 32;  // blocks per kernel call: 2 × 64 KiB of input, in L2
    block_result res[chunk];
    while (last - i >= block_size) {
      const std::size_t n = std::min(chunk, (last - i) / block_size);
      kernel.blocks(a + i, b + i, n, eps, res);
      for (std::size_t k = 0; k < n; ++k, i += block_size)
        take_block(kernel, p, res[k], a + i, b + i, base + i, eps);
    }
  }
  for (; i < last; ++i) scalar_pair(p, a[i], b[i], base + i, eps);
}

inline unsigned thread_count(unsigned requested, std::size_t n) noexcept {
  unsigned t = requested ? requested : std::max(1u, std::thread::hardware_concurrency());
  // Below ~1 Mi elements per thread, starting threads costs more than it saves.
  const std::size_t useful = std::max<std::size_t>(1, n / (std::size_t{1} << 20));
  return static_cast<unsigned>(std::min<std::size_t>(t, useful));
}

}  // namespace detail

/// Streams consecutive chunks of (a, b) through the paired reducer. Results depend only on the
/// data and on the chunk boundaries (keep chunks a multiple of detail::block_size = 512 elements,
/// or use one chunk).
///
///     fq::stats::paired_reducer r({.epsilon = 1e-8});
///     r.update(original_row, quantized_row);   // as many times as needed
///     fq::stats::paired_stats s = r.result();
class paired_reducer {
 public:
  /// Throws fq::error when `o.kernels` is unset and FQ_FORCE_ARCH names kernels this CPU lacks.
  explicit paired_reducer(paired_options o = {})
      : opt_(o), kernels_(o.kernels ? *o.kernels : best_kernels()) {}

  /// Adds the pairs (a[i], b[i]); throws fq::error when the lengths differ.
  void update(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size())
      throw error(errc::invalid_argument, "",
                  "paired arrays differ in length (" + std::to_string(a.size()) + " and " +
                      std::to_string(b.size()) + ")");
    const std::size_t n = a.size();
    const unsigned t = detail::thread_count(opt_.threads, n);
    if (t <= 1) {
      detail::reduce_range(kernels_, acc_, a.data(), b.data(), 0, n, offset_, opt_);
    } else {
      const std::size_t blocks = (n + detail::block_size - 1) / detail::block_size;
      std::vector<detail::paired_partial> parts(t);
      const auto run = [&](unsigned k) {
        const std::size_t first = blocks * k / t * detail::block_size;
        const std::size_t last = std::min(n, blocks * (k + 1) / t * detail::block_size);
        detail::reduce_range(kernels_, parts[k], a.data(), b.data(), first, last, offset_, opt_);
      };
      std::vector<std::thread> pool;
      for (unsigned k = 1; k < t; ++k) pool.emplace_back(run, k);
      run(0);  // this thread takes a share too
      for (auto& th : pool) th.join();
      for (const auto& part : parts) acc_.merge(part);  // fixed order
    }
    offset_ += n;
  }

  /// The statistics of everything added so far.
  paired_stats result() const {
    paired_stats s;
    const auto& p = acc_;
    s.epsilon = opt_.epsilon;
    s.count = p.count, s.finite_pairs = p.finite, s.changed = p.changed;
    s.nan_a = p.nan_a, s.nan_b = p.nan_b, s.inf_a = p.inf_a, s.inf_b = p.inf_b;
    s.sign_flips = p.flips, s.flushed_to_zero = p.flushed;
    s.sum_sq_a = p.s_aa.value(), s.sum_sq_b = p.s_bb.value(), s.sum_sq_diff = p.s_dd.value();
    s.dot = p.s_ab.value();
    if (p.finite == 0) return s;
    s.max_abs_diff = p.max_d, s.max_abs_diff_index = p.max_d_index;
    s.max_rel_diff = p.max_r, s.max_rel_diff_index = p.max_r_index;
    s.mean_abs_diff = exact_mean(p.s_absd, p.finite);
    s.mean_rel_diff = exact_mean(p.s_rel, p.finite);
    s.rmse = std::sqrt(s.sum_sq_diff / static_cast<double>(p.finite));
    s.sqnr_db = s.sum_sq_diff == 0 ? (s.sum_sq_a == 0 ? std::numeric_limits<double>::quiet_NaN()
                                                      : std::numeric_limits<double>::infinity())
                                   : 10 * std::log10(s.sum_sq_a / s.sum_sq_diff);
    if (s.sum_sq_a > 0 && s.sum_sq_b > 0)
      s.cosine = s.dot / (std::sqrt(s.sum_sq_a) * std::sqrt(s.sum_sq_b));
    return s;
  }

 private:
  paired_options opt_;
  kernel_table kernels_;
  detail::paired_partial acc_;
  std::uint64_t offset_ = 0;
};

/// All paired statistics of `a` (original) against `b` (quantized) in one call.
inline paired_stats compare(std::span<const float> a, std::span<const float> b,
                            const paired_options& o = {}) {
  paired_reducer r(o);
  r.update(a, b);
  return r.result();
}

}  // namespace fq::stats
