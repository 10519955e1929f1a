// SPDX-License-Identifier: MIT
// Paired reducers: every difference statistic of an original tensor `a` and its quantized copy `b`
// in one pass, SIMD and multithreaded, with a result that does not depend on the thread count, the
// chunking into threads or the instruction set.
//
// How the result is made independent of all three:
// - Data is cut into blocks of `block_size` elements at fixed positions. Every per-block value is
//   computed with the same 8 "virtual lanes" (element k of a group of 8 always goes to lane k),
//   whatever the SIMD width, and lanes are combined in a fixed order.
// - Block values go into exact accumulators (exact_sum), whose additions are associative, so the
//   order of blocks and threads does not matter.
// - Σ|a-b| is exact: a block takes the SIMD path only when the exponents of its nonzero values
//   span at most 20 binades, which makes a-b and every float64 addition of |a-b| in it exact (all
//   values are multiples of the smallest one's unit, and 256 of them stay below 2^53 units).
//   Other blocks (wide range, NaN, Inf) take the scalar path, which adds every term exactly.
// - Products and relative differences are summed per lane with TwoSum (error-free), so the block
//   sums carry an error near 2^-100 relative: the means are the exactly rounded value except
//   within that distance of a rounding boundary; sums of squares (RMSE, SQNR, std) use plain
//   per-lane float64 sums, a relative error below 2^-45.
// - Bit-identity across instruction sets assumes no fused multiply-add contraction: build with
//   -ffp-contract=off (the project's targets do), as GCC contracts a*b+c by default under -mfma.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <thread>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../config.hpp"
#include "../error.hpp"
#include "exact_sum.hpp"

namespace fq::stats {

/// Options of the paired reducer.
struct paired_options {
  double epsilon = 1e-8;      ///< ε of the relative difference |a-b| / (|a| + ε)
  unsigned threads = 0;       ///< 0: std::thread::hardware_concurrency()
  bool force_scalar = false;  ///< take the scalar (exact) path everywhere: the tests' oracle
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

inline constexpr std::size_t block_size = 256;
inline constexpr std::size_t virtual_lanes = 8;

/// Partial result of a range of blocks; merged in index order.
struct paired_partial {
  exact_sum s_absd, s_rel, s_aa, s_bb, s_dd, s_ab;
  std::uint64_t count = 0, finite = 0, changed = 0, nan_a = 0, nan_b = 0, inf_a = 0, inf_b = 0,
                flips = 0, flushed = 0;
  double max_d = -1, max_r = -1;  // -1: none yet
  std::uint64_t max_d_index = 0, max_r_index = 0;

  void take_max_d(double v, std::uint64_t i) noexcept {
    if (v > max_d || (v == max_d && i < max_d_index)) max_d = v, max_d_index = i;
  }
  void take_max_r(double v, std::uint64_t i) noexcept {
    if (v > max_r || (v == max_r && i < max_r_index)) max_r = v, max_r_index = i;
  }
  void merge(const paired_partial& o) noexcept {
    s_absd.add(o.s_absd), s_rel.add(o.s_rel);
    s_aa.add(o.s_aa), s_bb.add(o.s_bb), s_dd.add(o.s_dd), s_ab.add(o.s_ab);
    count += o.count, finite += o.finite, changed += o.changed;
    nan_a += o.nan_a, nan_b += o.nan_b, inf_a += o.inf_a, inf_b += o.inf_b;
    flips += o.flips, flushed += o.flushed;
    if (o.max_d >= 0) take_max_d(o.max_d, o.max_d_index);
    if (o.max_r >= 0) take_max_r(o.max_r, o.max_r_index);
  }
};

FQ_FORCE_INLINE std::uint32_t bits_of(float x) noexcept { return std::bit_cast<std::uint32_t>(x); }

/// The scalar path: every statistic of one pair, every sum exact. Also the tests' oracle.
FQ_FORCE_INLINE void scalar_pair(paired_partial& p, float fa, float fb, std::uint64_t index,
                                 double eps) noexcept {
  const std::uint32_t ua = bits_of(fa), ub = bits_of(fb);
  const std::uint32_t xa = ua & 0x7FFFFFFFu, xb = ub & 0x7FFFFFFFu;
  ++p.count;
  p.changed += ua != ub;
  p.nan_a += xa > 0x7F800000u, p.nan_b += xb > 0x7F800000u;
  p.inf_a += xa == 0x7F800000u, p.inf_b += xb == 0x7F800000u;
  if (xa >= 0x7F800000u || xb >= 0x7F800000u) return;
  ++p.finite;
  p.flips += xa != 0 && xb != 0 && ((ua ^ ub) >> 31) != 0;
  p.flushed += xa != 0 && xb == 0;
  const double a = fa, b = fb;
  double d, err;
  two_sum(a, -b, d, err);  // a - b == d + err exactly
  const double ad = std::fabs(d);
  p.s_absd.add(ad);
  p.s_absd.add(d < 0 ? -err : err);  // |d + err| == |d| ± err, as |err| <= ulp(d)/2
  p.take_max_d(ad, index);
  const double r = ad / (std::fabs(a) + eps);
  p.s_rel.add(r);
  p.take_max_r(r, index);
  // float32 products are exact in float64.
  p.s_aa.add(a * a);
  p.s_bb.add(b * b);
  p.s_ab.add(a * b);
  p.s_dd.add(a * a);  // (a-b)^2 exactly, as a² - 2ab + b²
  p.s_dd.add(b * b);
  p.s_dd.add(-2 * (a * b));
}

/// Sum of the 8 lanes in a fixed order.
FQ_FORCE_INLINE double lane_sum(const double* v) noexcept {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/// TwoSum lanes (s, e) folded into one (s, e) pair in a fixed order, the folding errors into e.
FQ_FORCE_INLINE void fold_two_sum(const double* s, const double* e, double& out_s,
                                  double& out_e) noexcept {
  double acc = s[0], err = e[0];
  for (std::size_t k = 1; k < virtual_lanes; ++k) {
    double t, r;
    two_sum(acc, s[k], t, r);
    acc = t;
    err += r + e[k];
  }
  out_s = acc;
  out_e = err;
}

/// Integer pre-scan of one block on float lanes: the bit-pattern counts, and the largest and the
/// smallest nonzero magnitude (as float bits) that decide whether the block may take the fast path.
template <class Arch>
FQ_FORCE_INLINE void prescan(const float* a, const float* b, std::uint32_t& hi, std::uint32_t& lo,
                             std::uint32_t& changed, std::uint32_t& flips,
                             std::uint32_t& flushed) noexcept {
  using f32 = xsimd::batch<float, Arch>;
  using i32 = xsimd::batch<std::int32_t, Arch>;
  constexpr std::size_t w = f32::size;
  const i32 magnitude(0x7FFFFFFF), one(1), zero(0);
  i32 n_changed(0), n_flips(0), n_flushed(0);
  f32 vmax(0.0f), vmin(std::numeric_limits<float>::max());
  for (std::size_t i = 0; i < block_size; i += w) {
    const i32 ua = xsimd::bitwise_cast<i32>(f32::load_unaligned(a + i));
    const i32 ub = xsimd::bitwise_cast<i32>(f32::load_unaligned(b + i));
    const i32 xa = ua & magnitude, xb = ub & magnitude;
    n_changed += xsimd::select(ua != ub, one, zero);
    const auto nz_a = xa != zero, z_b = xb == zero;
    n_flushed += xsimd::select(nz_a && z_b, one, zero);
    n_flips += xsimd::select(nz_a && !z_b && ((ua ^ ub) < zero), one, zero);
    vmax = xsimd::max(vmax, xsimd::max(xsimd::bitwise_cast<f32>(xa), xsimd::bitwise_cast<f32>(xb)));
    // Magnitude bits minus one: zero becomes a NaN pattern, which x86 min (returning its second
    // operand when either is NaN) skips; elsewhere the NaN spreads and sends the block to the
    // scalar path, which is slower but still right. A power of two drops one binade: safe.
    vmin = xsimd::min(xsimd::bitwise_cast<f32>(xa - one), vmin);
    vmin = xsimd::min(xsimd::bitwise_cast<f32>(xb - one), vmin);
  }
  alignas(64) std::int32_t c[3][w];
  alignas(64) float m[2][w];
  n_changed.store_aligned(c[0]), n_flips.store_aligned(c[1]), n_flushed.store_aligned(c[2]);
  vmax.store_aligned(m[0]), vmin.store_aligned(m[1]);
  hi = 0, lo = 0x7FFFFFFFu;
  for (std::size_t k = 0; k < w; ++k) {
    changed += static_cast<std::uint32_t>(c[0][k]);
    flips += static_cast<std::uint32_t>(c[1][k]);
    flushed += static_cast<std::uint32_t>(c[2][k]);
    hi = std::max(hi, bits_of(m[0][k]));
    lo = std::min(lo, bits_of(m[1][k]));
  }
}

/// `batch::size` floats from `p`, widened to float64 (exact). xsimd 8.1 has no widening
/// conversion, so x86 gets the one-instruction intrinsics and other architectures a copy.
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<double, Arch> load_widen(const float* p) noexcept {
  using batch = xsimd::batch<double, Arch>;
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    return batch(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#endif
#if XSIMD_WITH_AVX
  if constexpr (std::is_base_of_v<xsimd::avx, Arch>) return batch(_mm256_cvtps_pd(_mm_loadu_ps(p)));
#endif
#if XSIMD_WITH_SSE2
  if constexpr (std::is_base_of_v<xsimd::sse2, Arch>)
    return batch(
        _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
#endif
  alignas(64) double tmp[batch::size];
  for (std::size_t k = 0; k < batch::size; ++k) tmp[k] = p[k];
  return batch::load_aligned(tmp);
}

/// One block on the SIMD path, after the pre-scan. Returns false, having changed nothing, when the
/// block holds NaN or Inf.
template <class Arch>
bool simd_block(paired_partial& p, const float* fa, const float* fb, std::uint64_t index0,
                double eps) noexcept {
  using batch = xsimd::batch<double, Arch>;
  constexpr std::size_t w = batch::size;
  static_assert(virtual_lanes % w == 0, "SIMD width must divide the virtual lane count");
  constexpr std::size_t regs = virtual_lanes / w;
  constexpr std::size_t n = block_size;
  // One pass: |a-b| (exact here, see the header comment) and its maximum; the sums of squares
  // (plain per-lane sums, relative error < 2^-45, fixed lane order); Σab (it may cancel, and the
  // cosine needs it to 1e-12) and the relative differences with TwoSum lanes, and their maximum.
  const batch ve(eps);
  batch sd[regs], md[regs], aa[regs], bb[regs], dd[regs], s[regs], e[regs], rs[regs], re[regs],
      mr[regs];
  for (std::size_t r = 0; r < regs; ++r)
    sd[r] = md[r] = aa[r] = bb[r] = dd[r] = s[r] = e[r] = rs[r] = re[r] = mr[r] = batch(0.0);
  for (std::size_t i = 0; i < n; i += virtual_lanes)
    for (std::size_t r = 0; r < regs; ++r) {
      const batch a = load_widen<Arch>(fa + i + r * w), b = load_widen<Arch>(fb + i + r * w);
      const batch d = a - b, ad = xsimd::abs(d);
      sd[r] += ad;
      md[r] = xsimd::max(md[r], ad);
      aa[r] += a * a, bb[r] += b * b, dd[r] += d * d;
      const batch x = a * b;
      const batch t = s[r] + x, bp = t - s[r];
      e[r] += (s[r] - (t - bp)) + (x - bp);
      s[r] = t;
      const batch y = ad / (xsimd::abs(a) + ve);
      mr[r] = xsimd::max(mr[r], y);
      const batch u = rs[r] + y, up = u - rs[r];
      re[r] += (rs[r] - (u - up)) + (y - up);
      rs[r] = u;
    }
  alignas(64) double lanes[10][virtual_lanes];
  for (std::size_t r = 0; r < regs; ++r) {
    sd[r].store_aligned(lanes[0] + r * w), md[r].store_aligned(lanes[1] + r * w);
    aa[r].store_aligned(lanes[2] + r * w), bb[r].store_aligned(lanes[3] + r * w);
    dd[r].store_aligned(lanes[4] + r * w), s[r].store_aligned(lanes[5] + r * w);
    e[r].store_aligned(lanes[6] + r * w), rs[r].store_aligned(lanes[7] + r * w);
    re[r].store_aligned(lanes[8] + r * w), mr[r].store_aligned(lanes[9] + r * w);
  }
  const double block_sd = lane_sum(lanes[0]);
  // Any NaN or Inf in the block makes Σ|a-b| NaN or Inf (finite floats cannot overflow it).
  if (!std::isfinite(block_sd)) return false;
  p.s_absd.add(block_sd);
  p.s_aa.add(lane_sum(lanes[2]));
  p.s_bb.add(lane_sum(lanes[3]));
  p.s_dd.add(lane_sum(lanes[4]));
  double fs, fe;
  fold_two_sum(lanes[5], lanes[6], fs, fe);
  p.s_ab.add(fs);
  p.s_ab.add(fe);
  fold_two_sum(lanes[7], lanes[8], fs, fe);
  p.s_rel.add(fs);
  p.s_rel.add(fe);
  // Where the maxima first occur: rare once they have settled.
  const double block_md = *std::max_element(lanes[1], lanes[1] + virtual_lanes);
  if (block_md > p.max_d)
    for (std::size_t i = 0; i < n; ++i)
      if (std::fabs(double{fa[i]} - fb[i]) == block_md) {
        p.take_max_d(block_md, index0 + i);
        break;
      }
  const double block_mr = *std::max_element(lanes[9], lanes[9] + virtual_lanes);
  if (block_mr > p.max_r)
    for (std::size_t i = 0; i < n; ++i)
      if (std::fabs(double{fa[i]} - fb[i]) / (std::fabs(double{fa[i]}) + eps) == block_mr) {
        p.take_max_r(block_mr, index0 + i);
        break;
      }
  return true;
}

/// Blocks [first, last) of a and b (indices relative to the arrays; `base` is the global index of
/// element 0); a last partial block goes through the scalar path.
template <class Arch>
void reduce_range(paired_partial& p, const float* a, const float* b, std::size_t first,
                  std::size_t last, std::uint64_t base, const paired_options& o) noexcept {
  const double eps = o.epsilon;
  for (std::size_t i0 = first; i0 < last; i0 += block_size) {
    const std::size_t len = std::min(block_size, last - i0);
    bool fast = !o.force_scalar && len == block_size;
    std::uint32_t changed = 0, flips = 0, flushed = 0;
    if (fast) {
      std::uint32_t hi, lo;
      prescan<Arch>(a + i0, b + i0, hi, lo, changed, flips, flushed);
      const int e_hi = static_cast<int>(hi >> 23), e_lo = std::max(static_cast<int>(lo >> 23), 1);
      fast = e_hi - e_lo <= 20;
    }
    if (fast) {
      fast = simd_block<Arch>(p, a + i0, b + i0, base + i0, eps);
    }
    if (!fast) {
      for (std::size_t k = 0; k < len; ++k)
        scalar_pair(p, a[i0 + k], b[i0 + k], base + i0 + k, eps);
      continue;
    }
    p.count += block_size, p.finite += block_size;
    p.changed += changed, p.flips += flips, p.flushed += flushed;
  }
}

inline unsigned thread_count(unsigned requested, std::size_t n) noexcept {
  unsigned t = requested ? requested : std::max(1u, std::thread::hardware_concurrency());
  // Below ~1 Mi elements per thread, starting threads costs more than it saves.
  const std::size_t useful = std::max<std::size_t>(1, n / (std::size_t{1} << 20));
  return static_cast<unsigned>(std::min<std::size_t>(t, useful));
}

}  // namespace detail

/// Streams consecutive chunks of (a, b) through the paired reducer. Results depend only on the
/// data and on the chunk boundaries (keep chunks a multiple of 256 elements, or use one chunk).
///
///     fq::stats::paired_reducer r({.epsilon = 1e-8});
///     r.update(original_row, quantized_row);   // as many times as needed
///     fq::stats::paired_stats s = r.result();
class paired_reducer {
 public:
  explicit paired_reducer(paired_options o = {}) : opt_(o) {}

  /// Adds the pairs (a[i], b[i]); throws fq::error when the lengths differ.
  template <class Arch = xsimd::default_arch>
  void update(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size())
      throw error(errc::invalid_argument, "",
                  "paired arrays differ in length (" + std::to_string(a.size()) + " and " +
                      std::to_string(b.size()) + ")");
    const std::size_t n = a.size();
    const unsigned t = detail::thread_count(opt_.threads, n);
    if (t <= 1) {
      detail::reduce_range<Arch>(acc_, a.data(), b.data(), 0, n, offset_, opt_);
    } else {
      const std::size_t blocks = (n + detail::block_size - 1) / detail::block_size;
      std::vector<detail::paired_partial> parts(t);
      std::vector<std::thread> pool;
      for (unsigned k = 0; k < t; ++k) {
        const std::size_t first = blocks * k / t * detail::block_size;
        const std::size_t last = std::min(n, blocks * (k + 1) / t * detail::block_size);
        pool.emplace_back([&, k, first, last] {
          detail::reduce_range<Arch>(parts[k], a.data(), b.data(), first, last, offset_, opt_);
        });
      }
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
  detail::paired_partial acc_;
  std::uint64_t offset_ = 0;
};

/// All paired statistics of `a` (original) against `b` (quantized) in one call.
template <class Arch = xsimd::default_arch>
paired_stats compare(std::span<const float> a, std::span<const float> b,
                     const paired_options& o = {}) {
  paired_reducer r(o);
  r.update<Arch>(a, b);
  return r.result();
}

}  // namespace fq::stats
