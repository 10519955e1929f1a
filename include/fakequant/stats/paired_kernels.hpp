// SPDX-License-Identifier: MIT
// The paired reducer's kernels: one block of pairs at a time, templated on the instruction set, and
// their table (kernel_table) that stats/dispatch.hpp chooses from at run time. How the blocks make
// the result independent of threads and instruction sets is told in stats/paired.hpp.
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
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../config.hpp"
#include "../error.hpp"
#include "exact_sum.hpp"

namespace fq::stats {

namespace detail {
struct block_result;
}

/// A paired-reducer kernel compiled for one instruction set: make_kernels<Arch>(), or one
/// chosen at run time (stats/dispatch.hpp). Every kernel gives the same bits.
struct kernel_table {
  const char* name = nullptr;
  void (*blocks)(const float* a, const float* b, std::size_t blocks, double eps,
                 detail::block_result* out) noexcept = nullptr;
  /// One smaller block of 2^log2n elements (detail::split_log2 <= log2n < detail::block_log2):
  /// the halves of a block that was not fast.
  void (*part)(const float* a, const float* b, int log2n, double eps,
               detail::block_result* out) noexcept = nullptr;
};

namespace detail {

inline constexpr int block_log2 = 9;
inline constexpr std::size_t block_size = std::size_t{1} << block_log2;
inline constexpr std::size_t virtual_lanes = 8;
/// A block that is not fast is halved, down to blocks of 2^split_log2, and each half tried again
/// (a narrower range passes in a smaller block); what is still not fast takes the exact path.
inline constexpr int split_log2 = 6;
/// The widest exponent span (binades from the smallest to the largest nonzero magnitude) of a
/// block of 2^log2n elements on the SIMD path: then its values of |a-b| add up below 2^53 units
/// of the smallest one's unit.
constexpr int fast_span(int log2n) noexcept { return 28 - log2n; }

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

/// Sum of the 8 lanes in a fixed order: a pairwise tree (lane k with lane k + 4, then k + 2, then
/// k + 1), whose levels are independent operations.
FQ_FORCE_INLINE double lane_sum(const double* v) noexcept {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

/// TwoSum lanes (s, e) folded into one (s, e) pair by the same tree, the folding errors into e.
FQ_FORCE_INLINE void fold_two_sum(const double* s, const double* e, double& out_s,
                                  double& out_e) noexcept {
  double ts[virtual_lanes], te[virtual_lanes];
  for (std::size_t k = 0; k < virtual_lanes; ++k) ts[k] = s[k], te[k] = e[k];
  for (std::size_t h = virtual_lanes / 2; h > 0; h /= 2)
    for (std::size_t k = 0; k < h; ++k) {
      double t, r;
      two_sum(ts[k], ts[k + h], t, r);
      ts[k] = t;
      te[k] = (te[k] + te[k + h]) + r;
    }
  out_s = ts[0];
  out_e = te[0];
}

/// One block's values, its 8 virtual lanes already folded in the fixed order.
struct block_result {
  double absd, aa, bb, dd, ab, ab_err, rel, rel_err, max_d, max_r;
  std::uint32_t changed, flips, flushed;
  bool fast;  ///< false: NaN, Inf, too wide a range or an overflowing ratio; redo it exactly
};

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

/// Counts the lanes where m holds into the vector n: subtracting the all-ones lanes where masks
/// are vectors, a masked subtraction where they are mask registers (AVX-512).
template <class Arch>
FQ_FORCE_INLINE void count_into(xsimd::batch<std::int32_t, Arch>& n,
                                const xsimd::batch_bool<std::int32_t, Arch>& m) noexcept {
  using i32 = xsimd::batch<std::int32_t, Arch>;
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    n = i32(_mm512_mask_sub_epi32(n, m.data, n, _mm512_set1_epi32(-1)));
    return;
  }
#endif
#if XSIMD_WITH_SSE2
  if constexpr (std::is_base_of_v<xsimd::sse2, Arch> || std::is_base_of_v<xsimd::avx, Arch>) {
    n -= i32(m.data);
    return;
  }
#endif
  n = xsimd::select(m, n + i32(1), n);
}

/// z + x*y for a product x*y that is exact in float64: a fused multiply-add where there is one,
/// and a multiply and an add elsewhere, which round the same.
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<double, Arch> add_exact_product(
    const xsimd::batch<double, Arch>& x, const xsimd::batch<double, Arch>& y,
    const xsimd::batch<double, Arch>& z) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    return xsimd::batch<double, Arch>(_mm512_fmadd_pd(x, y, z));
#endif
  return xsimd::fma(x, y, z);  // xsimd: fused on fma3 architectures, x * y + z elsewhere
}

/// {min, max} of non-negative doubles that are not NaN. AVX-512 compares their bit patterns,
/// which order as the values do, on its integer units: the kernel's additions keep the
/// floating-point adders busy, and the comparisons would queue behind them.
template <class Arch>
FQ_FORCE_INLINE std::pair<xsimd::batch<double, Arch>, xsimd::batch<double, Arch>> minmax_nonneg(
    const xsimd::batch<double, Arch>& x, const xsimd::batch<double, Arch>& y) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    using f64 = xsimd::batch<double, Arch>;
    const __m512i u = _mm512_castpd_si512(x), v = _mm512_castpd_si512(y);
    return {f64(_mm512_castsi512_pd(_mm512_min_epu64(u, v))),
            f64(_mm512_castsi512_pd(_mm512_max_epu64(u, v)))};
  }
#endif
  return {xsimd::min(x, y), xsimd::max(x, y)};
}

/// Pass 1 of paired_block: the bit-pattern counts and the exponent range, on float lanes. Sets
/// out.changed, flips, flushed and fast; returns the biased exponent of the largest magnitude.
template <class Arch, int Log2>
FQ_FORCE_INLINE int paired_block_bits(const float* pa, const float* pb,
                                      block_result& out) noexcept {
  constexpr std::size_t n = std::size_t{1} << Log2;
  using f32 = xsimd::batch<float, Arch>;
  using i32 = xsimd::batch<std::int32_t, Arch>;
  constexpr std::size_t wf = f32::size;
  static_assert(n % wf == 0);
  // Pass 1: bit patterns.
  const i32 magnitude(0x7FFFFFFF), zero(0);
  i32 n_changed(0), n_flips(0), n_flushed(0), hi(0);
  // Smallest nonzero magnitude, kept as x + 0x7FFFFFFF (wrapping) so that signed order puts
  // zero (0x7FFFFFFF) above every nonzero value (0x80000000 and up).
  i32 lo(0x7FFFFFFF);
  for (std::size_t i = 0; i < n; i += wf) {
    // The kernel does too much work per byte for the out-of-order window to reach the next cache
    // lines in time: ask for them from here, 1.5 blocks (3 KiB per array) ahead, the distance
    // that measured best (prefetches never fault, past the end too).
    if (i % 16 == 0) {
      __builtin_prefetch(pa + i + 3 * block_size / 2);
      __builtin_prefetch(pb + i + 3 * block_size / 2);
    }
    const i32 ua = xsimd::bitwise_cast<i32>(f32::load_unaligned(pa + i));
    const i32 ub = xsimd::bitwise_cast<i32>(f32::load_unaligned(pb + i));
    const i32 xa = ua & magnitude, xb = ub & magnitude;
    const auto nz_a = xa != zero, nz_b = xb != zero;
    count_into(n_changed, ua != ub);
    count_into(n_flushed, nz_a && !nz_b);
    count_into(n_flips, nz_a && nz_b && ((ua ^ ub) < zero));
    hi = xsimd::max(hi, xsimd::max(xa, xb));
    lo = xsimd::min(lo, xsimd::min(xa + magnitude, xb + magnitude));
  }
  std::uint32_t changed = 0, flips = 0, flushed = 0, h = 0, l = 0x7FFFFFFFu;
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    changed = static_cast<std::uint32_t>(_mm512_reduce_add_epi32(n_changed));
    flips = static_cast<std::uint32_t>(_mm512_reduce_add_epi32(n_flips));
    flushed = static_cast<std::uint32_t>(_mm512_reduce_add_epi32(n_flushed));
    h = static_cast<std::uint32_t>(_mm512_reduce_max_epi32(hi));
    l = static_cast<std::uint32_t>(_mm512_reduce_min_epi32(lo)) ^ 0x80000000u;
  } else
#endif
  {
    alignas(64) std::int32_t c[5][wf];
    n_changed.store_aligned(c[0]), n_flips.store_aligned(c[1]), n_flushed.store_aligned(c[2]);
    hi.store_aligned(c[3]), lo.store_aligned(c[4]);
    for (std::size_t k = 0; k < wf; ++k) {
      changed += static_cast<std::uint32_t>(c[0][k]);
      flips += static_cast<std::uint32_t>(c[1][k]);
      flushed += static_cast<std::uint32_t>(c[2][k]);
      h = std::max(h, static_cast<std::uint32_t>(c[3][k]));
      l = std::min(l, static_cast<std::uint32_t>(c[4][k]) ^ 0x80000000u);  // unsigned order
    }
  }
  l = (std::min(l, 0x7FFFFFFFu) ^ 0x80000000u) - 0x7FFFFFFFu;  // the smallest nonzero magnitude
  out.changed = changed, out.flips = flips, out.flushed = flushed;
  // Fast when there is no NaN or Inf and the nonzero exponents span at most fast_span(Log2)
  // binades. Then every value is a multiple of the unit u = 2^(e_lo - 150) of the smallest one and
  // below 2^(e_hi - 126) = 2^(span + 24) u.
  const int e_hi = std::max(static_cast<int>(h >> 23), 1);
  const int e_lo = std::max(static_cast<int>(l >> 23), 1);
  out.fast = h < 0x7F800000u && e_hi - e_lo <= fast_span(Log2);
  return e_hi;
}

/// Pass 2 of paired_block, for a fast block whose largest exponent is e_hi: the sums and maxima
/// on float64 lanes.
template <class Arch, int Log2>
FQ_FORCE_INLINE void paired_block_sums(const float* pa, const float* pb, double eps, int e_hi,
                                       block_result& out) noexcept {
  constexpr std::size_t n = std::size_t{1} << Log2;
  using f64 = xsimd::batch<double, Arch>;
  constexpr std::size_t wd = f64::size;
  static_assert(virtual_lanes % wd == 0, "SIMD width must divide the virtual lane count");
  static_assert(n % virtual_lanes == 0);
  constexpr std::size_t regs = virtual_lanes / wd;  // registers per lane set

  // Pass 2: float64 lanes. Each |a-b| is below 2^(span + 25) u, so float64 holds it and every
  // partial sum of the N = 2^Log2 of them (below 2^(span + 25 + log2 N) <= 2^53 u) exactly.
  //
  // Σab: the products are exact, multiples of u² and below M = 2^(2 (e_hi - 126)). Each lane
  // starts at C = 2N M instead of 0; its N/8 terms keep the running sum s within C ± C/16, above
  // every term, so Fast2Sum gives the error of each addition exactly. These errors are multiples
  // of u² below ulp(C)/2 = 2^(log2 N + 2 span - 4) u², so they too add up exactly, and so do the
  // lanes' s - C (multiples of ulp(C)/2, below C/2 in all). The block's Σab is thus exactly
  // Σ (s - C) + Σ errors, two doubles.
  const f64 offset(std::bit_cast<double>(
      static_cast<std::uint64_t>(2 * (e_hi - 126) + Log2 + 1 + 1023) << 52));  // C
  const f64 ve(eps);
  f64 sd[regs], md[regs], aa[regs], bb[regs], dd[regs], s[regs], e[regs], rs[regs], re[regs],
      mr[regs];
  for (std::size_t r = 0; r < regs; ++r) {
    sd[r] = md[r] = aa[r] = bb[r] = dd[r] = e[r] = rs[r] = re[r] = mr[r] = f64(0.0);
    s[r] = offset;
  }
  for (std::size_t i = 0; i < n; i += virtual_lanes)
    for (std::size_t r = 0; r < regs; ++r) {
      const std::size_t at = i + r * wd;
      const f64 a = load_widen<Arch>(pa + at), b = load_widen<Arch>(pb + at);
      const f64 d = a - b, ad = xsimd::abs(d);
      sd[r] += ad;
      md[r] = minmax_nonneg(md[r], ad).second;
      // a² and b² are exact in float64, so a fused multiply-add rounds exactly as the separate
      // multiply and add of the instruction sets without one (xsimd emulates it so).
      aa[r] = add_exact_product(a, a, aa[r]), bb[r] = add_exact_product(b, b, bb[r]);
      dd[r] += d * d;
      const f64 x = a * b, t = s[r] + x;
      e[r] += x - (t - s[r]);
      s[r] = t;
      // Ratios are ≥ 0, so the larger of sum and term is known: Fast2Sum of (max, min) is
      // error-free and one operation cheaper than TwoSum.
      const f64 y = ad / (xsimd::abs(a) + ve);
      mr[r] = minmax_nonneg(mr[r], y).second;
      const auto [small, big] = minmax_nonneg(rs[r], y);
      const f64 u = big + small;
      re[r] += small - (u - big);
      rs[r] = u;
    }
  alignas(64) double lanes[10][virtual_lanes];
  for (std::size_t r = 0; r < regs; ++r) {
    s[r] -= offset;  // exact
    sd[r].store_aligned(lanes[0] + r * wd), md[r].store_aligned(lanes[1] + r * wd);
    aa[r].store_aligned(lanes[2] + r * wd), bb[r].store_aligned(lanes[3] + r * wd);
    dd[r].store_aligned(lanes[4] + r * wd), s[r].store_aligned(lanes[5] + r * wd);
    e[r].store_aligned(lanes[6] + r * wd), rs[r].store_aligned(lanes[7] + r * wd);
    re[r].store_aligned(lanes[8] + r * wd), mr[r].store_aligned(lanes[9] + r * wd);
  }
  out.absd = lane_sum(lanes[0]);
  out.aa = lane_sum(lanes[2]), out.bb = lane_sum(lanes[3]), out.dd = lane_sum(lanes[4]);
  out.ab = lane_sum(lanes[5]), out.ab_err = lane_sum(lanes[6]);  // both exact
  fold_two_sum(lanes[7], lanes[8], out.rel, out.rel_err);
  double m = lanes[1][0], mrel = lanes[9][0];
  for (std::size_t k = 1; k < virtual_lanes; ++k)
    m = std::max(m, lanes[1][k]), mrel = std::max(mrel, lanes[9][k]);
  out.max_d = m, out.max_r = mrel;
  // A ratio that overflowed to Inf leaves Inf or NaN here; the exact path gets it right.
  out.fast = std::isfinite(out.rel + out.rel_err) && std::isfinite(mrel);
}

/// One full block in two passes over its (by then cached) data: the bit-pattern counts and the
/// exponent range on float lanes, then, only if the block is fast, the sums and maxima on float64
/// lanes. Element i goes to virtual lane i % 8, whose register and position are the same on every
/// instruction set, and each lane adds its elements in index order.
template <class Arch, int Log2 = block_log2>
FQ_FORCE_INLINE void paired_block(const float* pa, const float* pb, double eps,
                                  block_result& out) noexcept {
  const int e_hi = paired_block_bits<Arch, Log2>(pa, pb, out);
  if (!out.fast) return;  // the exact path redoes the whole block
  paired_block_sums<Arch, Log2>(pa, pb, eps, e_hi, out);
}

/// The SIMD kernel: `blocks` full blocks from a and b into out[0 .. blocks). Needs ε > 0 (so
/// that no ratio is 0/0).
template <class Arch>
void paired_blocks(const float* a, const float* b, std::size_t blocks, double eps,
                   block_result* out) noexcept {
  for (std::size_t k = 0; k < blocks; ++k)
    paired_block<Arch>(a + k * block_size, b + k * block_size, eps, out[k]);
}

/// The kernel for one smaller block (kernel_table::part).
template <class Arch>
void paired_part(const float* a, const float* b, int log2n, double eps,
                 block_result* out) noexcept {
  static_assert(block_log2 == 9 && split_log2 == 6, "one case per size below");
  switch (log2n) {
    case 8:
      return paired_block<Arch, 8>(a, b, eps, *out);
    case 7:
      return paired_block<Arch, 7>(a, b, eps, *out);
    default:
      return paired_block<Arch, 6>(a, b, eps, *out);
  }
}

}  // namespace detail

/// The kernel for `Arch` (instantiate it only where the compiler flags allow `Arch`).
template <class Arch>
kernel_table make_kernels() noexcept {
  return {Arch::name(), &detail::paired_blocks<Arch>, &detail::paired_part<Arch>};
}

/// The kernel the including translation unit's compile flags allow; no set-up needed.
inline kernel_table default_kernels() noexcept { return make_kernels<xsimd::default_arch>(); }

}  // namespace fq::stats
