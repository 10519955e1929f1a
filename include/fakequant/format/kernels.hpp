// SPDX-License-Identifier: MIT
// SIMD fake quantization of float32 spans to any float_format, written once for every xsimd
// architecture and bit-identical to the scalar reference round_to (NaN outputs are some NaN).
//
// Normal range of the target: the rounding is done on the float32 bits, at a fixed bit position
// (23 − mantissa bits), by adding a rounding bias and masking (ml_dtypes' RoundBitsToNearestEven);
// a carry into the exponent is the next binade's first value. Below the target's normal range the
// grid spacing stops shrinking, so those lanes are rounded in float instead: x + C − C with C a
// power of two whose spacing is the target's smallest subnormal rounds x once, exactly, to that
// grid (C is chosen so x + C lies in [C, 2C)). Like round_to, this assumes the default floating-
// point environment (round to nearest, no flush-to-zero or denormals-are-zero).
//
// Formats whose largest exponent keeps C finite (all but bf16, ieee_e8mY and e8m0) use the float
// form for every lane under nearest-even: C = 2^(clamp(exponent of x) + 23 − m) gives each lane its
// own binade's spacing, which is the shortest kernel (small_rne below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "../config.hpp"
#include "../thread_pool.hpp"
#include "float_format.hpp"

namespace fq::format {

/// The constants of one (format, options) pair as the kernels use them; made by
/// kernel_params::of() outside the kernels.
struct kernel_params {
  enum class path : std::uint8_t {
    generic,     ///< any format and option
    small_rne,   ///< nearest-even, every lane in float (formats with a small exponent range)
    wide_rne,    ///< nearest-even on the signed bits (bf16, ieee_e8mY): no subnormal fix-up
    stochastic,  ///< counter-based stochastic rounding, in float as round_to
  };
  path kind = path::generic;
  /// A hardware conversion that rounds exactly like round_to here, where the CPU has it:
  /// F16C / AVX-512 vcvtps2ph for fp16 (nearest-even, overflow to Inf, subnormals kept) and
  /// AVX512-BF16 vcvtneps2bf16 for bf16 (the same, but float32 subnormal inputs are flushed by the
  /// instruction: lanes holding one are redone on the integer path unless flush_in asks for that).
  enum class hardware : std::uint8_t { none, f16, bf16 } hw = hardware::none;
  rounding mode = rounding::nearest_even;
  std::int32_t shift = 0;       ///< discarded float32 bits in the target's normal range
  std::int32_t keep = -1;       ///< mask of the kept bits
  std::int32_t bias = 0;        ///< added before masking (without the nearest-even parity bit)
  std::int32_t parity = 0;      ///< 1: nearest-even adds the lowest kept bit
  std::int32_t sub_limit = 0;   ///< |x| bits below this are rounded in float (0: none)
  float sub_magic = 0;          ///< C of x + C − C below the normal range
  float sub_ulp = 0;            ///< the target's smallest subnormal
  float sub_half = -1;          ///< half of it, or −1 when not a float32 value
  std::int32_t max_bits = 0;    ///< bits of the largest finite value
  std::int32_t ovf_finite = 0;  ///< result bits (without sign) of a finite overflow
  std::int32_t ovf_inf = 0;     ///< result bits (without sign) of an infinite input
  bool inf_differs = false;     ///< ovf_inf must be applied separately
  bool flush_in = false, flush_out = false, fnuz = false, e8m0 = false;
  std::int32_t min_normal = 0;          ///< bits of the smallest normal value of the target
  std::int32_t e8m0_empty = 0;          ///< e8m0 result of zero and negative inputs
  std::int32_t emin_bits = 0;           ///< small_rne: smallest exponent field of C's base
  std::int32_t ecap_bits = 0;           ///< small_rne: largest exponent field of C's base
  std::int32_t magic_add = 0;           ///< small_rne: (23 − m) << 23
  float max_value = 0;                  ///< the largest finite value
  std::int32_t emin = 0, man_bits = 0;  ///< stochastic
  std::uint64_t seed = 0;               ///< stochastic

  static kernel_params of(const float_format& f, const round_options& opt) noexcept {
    kernel_params p;
    const int m = f.man_bits, d = 23 - m, emin = f.min_exp(), emax = f.max_exp();
    const auto bits = [](float v) { return std::bit_cast<std::int32_t>(v); };
    p.mode = opt.rounding;
    p.shift = d;
    p.keep = static_cast<std::int32_t>(~((std::uint32_t{1} << d) - 1));
    const std::int32_t half = d == 0 ? 0 : std::int32_t{1} << (d - 1);
    switch (opt.rounding) {
      case rounding::nearest_even:
        // With no mantissa the kept part is the implicit bit, which is odd: ties go up.
        p.bias = d == 0 ? 0 : half - 1 + (m == 0 ? 1 : 0);
        p.parity = m == 0 || d == 0 ? 0 : 1;
        break;
      case rounding::nearest_away:
        p.bias = half;
        break;
      default:
        p.bias = 0;
        break;
    }
    // Lanes below the target's normal range take the float path. When that range starts at 2^-126
    // there are none: float32 subnormals are on the integer path's grid, unless the format has no
    // mantissa (then the integer path's parity, the implicit bit, is wrong for them) or its range
    // starts below 2^-126 (e8m0): then all float32 subnormals go the float way.
    if (emin > -126) p.sub_limit = bits(detail::pow2f(emin));
    if (emin < -126 || (emin == -126 && m == 0)) p.sub_limit = 0x00800000;
    p.sub_magic = detail::pow2f(emin - m + 23);
    p.sub_ulp = detail::pow2f(emin - m);
    p.sub_half = emin - m - 1 >= -149 ? detail::pow2f(emin - m - 1) : -1.0f;
    p.max_value = f.max_finite();
    p.max_bits = bits(p.max_value);
    constexpr std::int32_t inf = 0x7f800000, nan = 0x7fc00000;
    const std::int32_t policy_value = f.has_inf() ? inf : f.has_nan() ? nan : p.max_bits;
    const bool tz = opt.rounding == rounding::toward_zero;
    p.ovf_finite = tz || opt.overflow != overflow::ieee ? p.max_bits : policy_value;
    p.ovf_inf = opt.overflow == overflow::saturate ? p.max_bits : policy_value;
    p.flush_in = opt.flush_input_subnormals;
    p.flush_out = opt.flush_output_subnormals;
    p.fnuz = f.enc == encoding::fnuz;
    p.e8m0 = f.enc == encoding::e8m0;
    p.inf_differs = p.ovf_inf != p.ovf_finite || p.e8m0 || opt.rounding == rounding::stochastic;
    p.min_normal = bits(detail::pow2f(emin));
    p.e8m0_empty = opt.overflow == overflow::saturate ? p.min_normal : nan;
    p.emin_bits = (emin + 127) << 23;
    p.ecap_bits = emax + 1 + d <= 127 ? (emax + 1 + 127) << 23 : 0;
    p.magic_add = d << 23;
    p.emin = emin;
    p.man_bits = m;
    p.seed = opt.seed;
    const bool plain = !p.flush_in && !p.flush_out && !p.fnuz && !p.e8m0 && !p.inf_differs;
    if (opt.rounding == rounding::stochastic)
      p.kind = path::stochastic;
    else if (opt.rounding == rounding::nearest_even && plain && d >= 1 && p.ecap_bits != 0 &&
             emin >= -126)
      p.kind = path::small_rne;
    else if (opt.rounding == rounding::nearest_even && plain && p.sub_limit == 0)
      p.kind = path::wide_rne;
    const bool ieee_rne = opt.rounding == rounding::nearest_even && p.ovf_finite == inf &&
                          p.ovf_inf == inf && !p.flush_out && f.enc == encoding::ieee;
    if (ieee_rne && f.exp_bits == 5 && m == 10 && f.bias == 15 && !p.flush_in) p.hw = hardware::f16;
    if (ieee_rne && f.exp_bits == 8 && m == 7 && f.bias == 127) p.hw = hardware::bf16;
    return p;
  }
};

namespace detail {

template <class Arch>
struct kernel_consts {
  using ib = xsimd::batch<std::int32_t, Arch>;
  using fb = xsimd::batch<float, Arch>;
  ib keep, bias, parity, sub_limit, max_bits, ovf_finite, ovf_inf, min_normal, e8m0_empty,
      emin_bits, ecap_bits, magic_add;
  fb sub_magic, sub_ulp, sub_half, max_value, ovf_finite_f;
  explicit kernel_consts(const kernel_params& p) noexcept
      : keep(p.keep),
        bias(p.bias),
        parity(p.parity),
        sub_limit(p.sub_limit),
        max_bits(p.max_bits),
        ovf_finite(p.ovf_finite),
        ovf_inf(p.ovf_inf),
        min_normal(p.min_normal),
        e8m0_empty(p.e8m0_empty),
        emin_bits(p.emin_bits),
        ecap_bits(p.ecap_bits),
        magic_add(p.magic_add),
        sub_magic(p.sub_magic),
        sub_ulp(p.sub_ulp),
        sub_half(p.sub_half),
        max_value(p.max_value),
        ovf_finite_f(std::bit_cast<float>(p.ovf_finite)) {}
};

template <class Arch>
FQ_FORCE_INLINE xsimd::batch<std::int32_t, Arch> as_int(xsimd::batch<float, Arch> v) noexcept {
  return xsimd::bitwise_cast<xsimd::batch<std::int32_t, Arch>>(v);
}
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> as_float(xsimd::batch<std::int32_t, Arch> v) noexcept {
  return xsimd::bitwise_cast<xsimd::batch<float, Arch>>(v);
}

// What every non-nearest-even path does after rounding |x| to r: e8m0's smallest code, overflow,
// infinite inputs, output flushing, zero and negative e8m0 inputs, the sign, NaN. Integer compares
// are signed (SSE2 has no unsigned ones); r is below 2^31 on every lane that is not NaN.
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<std::int32_t, Arch> finish(
    const kernel_params& p, const kernel_consts<Arch>& c, xsimd::batch<std::int32_t, Arch> xi,
    xsimd::batch<std::int32_t, Arch> a, xsimd::batch<std::int32_t, Arch> ain,
    xsimd::batch<std::int32_t, Arch> r) noexcept {
  using ib = xsimd::batch<std::int32_t, Arch>;
  const ib zero(0), inf(0x7f800000);
  if (p.e8m0) r = xsimd::max(r, c.min_normal);
  r = xsimd::select(r > c.max_bits, c.ovf_finite, r);
  if (p.flush_out) r = xsimd::select(r < c.min_normal, zero, r);
  if (p.e8m0) r = xsimd::select((xi < zero) | (ain == zero), c.e8m0_empty, r);
  if (p.inf_differs) r = xsimd::select(a == inf, c.ovf_inf, r);
  if (!p.e8m0) {
    const ib sign = xi ^ a;
    r = r | (p.fnuz ? xsimd::select(r == zero, zero, sign) : sign);
  }
  return xsimd::select(a > inf, xi, r);
}

// Any format and option but stochastic rounding.
template <rounding R, class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> round_generic(const kernel_params& p,
                                                        const kernel_consts<Arch>& c,
                                                        xsimd::batch<float, Arch> x) noexcept {
  using ib = xsimd::batch<std::int32_t, Arch>;
  using fb = xsimd::batch<float, Arch>;
  const ib xi = as_int(x), a = xi & ib(0x7fffffff);
  const ib ain = p.flush_in ? xsimd::select(a < ib(0x00800000), ib(0), a) : a;
  ib r;
  if constexpr (R == rounding::nearest_even)
    r = (ain + c.bias + ((ain >> p.shift) & c.parity)) & c.keep;
  else
    r = (ain + c.bias) & c.keep;  // toward zero: bias 0; nearest-away: half
  if (p.sub_limit != 0) {
    const fb af = as_float(ain);
    fb rs = (af + c.sub_magic) - c.sub_magic;  // nearest-even on the subnormal grid, exact
    if constexpr (R == rounding::toward_zero) rs = xsimd::select(rs > af, rs - c.sub_ulp, rs);
    if constexpr (R == rounding::nearest_away)
      rs = xsimd::select((af - rs) == c.sub_half, rs + c.sub_ulp, rs);  // a tie rounded down
    r = xsimd::select(ain < c.sub_limit, as_int(rs), r);
  }
  return as_float(finish(p, c, xi, a, ain, r));
}

// Nearest-even for formats whose largest exponent keeps C finite: every lane as x + C − C, with C's
// exponent that of |x| clamped to the target's range (the smallest normal's below it, which gives
// the subnormal spacing; one past the largest above it, where everything overflows anyway).
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> round_small_rne(const kernel_consts<Arch>& c,
                                                          xsimd::batch<float, Arch> x) noexcept {
  using ib = xsimd::batch<std::int32_t, Arch>;
  using fb = xsimd::batch<float, Arch>;
  const ib xi = as_int(x), a = xi & ib(0x7fffffff);
  const ib e = xsimd::min(xsimd::max(a & ib(0x7f800000), c.emin_bits), c.ecap_bits);
  const fb big = as_float(e + c.magic_add);
  fb r = (as_float(a) + big) - big;                       // NaN stays NaN, Inf stays Inf
  r = xsimd::select(r > c.max_value, c.ovf_finite_f, r);  // false for NaN
  return as_float(as_int(r) | (xi & ib(std::int32_t(0x80000000u))));
}

// Nearest-even when the target's normal range reaches down to 2^-126 and overflow goes to Inf or
// saturates: the bias is added to the signed bits (the sign bit is kept by the mask; only a NaN
// can carry into it).
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> round_wide_rne(const kernel_params& p,
                                                         const kernel_consts<Arch>& c,
                                                         xsimd::batch<float, Arch> x) noexcept {
  using ib = xsimd::batch<std::int32_t, Arch>;
  const ib xi = as_int(x), a = xi & ib(0x7fffffff);
  ib r = (xi + c.bias + ((xi >> p.shift) & c.parity)) & c.keep;
  if (p.ovf_finite != 0x7f800000) {  // the grid continues to Inf's bits: only saturation differs
    const ib sign = xi ^ a;
    r = xsimd::select((r & ib(0x7fffffff)) > c.max_bits, c.ovf_finite | sign, r);
  }
  return as_float(xsimd::select(a > ib(0x7f800000), xi, r));
}

// Stochastic rounding exactly as round_to computes it: q = |x| / ulp, n = floor(q + u), n · ulp,
// with u read from `u` (one value per lane).
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> round_stochastic(const kernel_params& p,
                                                           const kernel_consts<Arch>& c,
                                                           xsimd::batch<float, Arch> x,
                                                           xsimd::batch<float, Arch> u) noexcept {
  using ib = xsimd::batch<std::int32_t, Arch>;
  using fb = xsimd::batch<float, Arch>;
  const ib xi = as_int(x), a = xi & ib(0x7fffffff);
  const ib ain = p.flush_in ? xsimd::select(a < ib(0x00800000), ib(0), a) : a;
  // The binade exponent clamped to the target's smallest; float32 subnormals count as -127, which
  // is below every target's except e8m0's, where the whole subnormal range shares 2^-127's ulp.
  const ib k = xsimd::max((ain >> 23) - ib(127), ib(p.emin)) - ib(p.man_bits);  // log2 of ulp
  const fb ulp = as_float(xsimd::select(k >= ib(-126), (k + ib(127)) << 23,
                                        as_int(as_float((k + ib(151)) << 23) * fb(0x1.0p-24f))));
  // |x| / ulp as two exact multiplications by powers of two (2^-k itself may not be a float32):
  // xsimd 8.1's NEON division goes through a reciprocal, which is not exact (0 / 2^-133 is NaN).
  const ib h = k >> 1;
  const fb q =
      (as_float(ain) * as_float((ib(127) - h) << 23)) * as_float((ib(127) - (k - h)) << 23);
  const fb n = xsimd::floor(q + u);
  return as_float(finish(p, c, xi, a, ain, as_int(n * ulp)));
}

template <class Arch, class Body>
FQ_FORCE_INLINE void for_each_batch(const float* in, float* out, std::size_t n,
                                    Body body) noexcept {
  using fb = xsimd::batch<float, Arch>;
  constexpr std::size_t w = fb::size;
  std::size_t i = 0;
  for (; i + 2 * w <= n; i += 2 * w) {
    const fb x0 = fb::load_unaligned(in + i), x1 = fb::load_unaligned(in + i + w);
    body(x0).store_unaligned(out + i);
    body(x1).store_unaligned(out + i + w);
  }
  for (; i + w <= n; i += w) body(fb::load_unaligned(in + i)).store_unaligned(out + i);
  if (i < n) {  // the tail through a padded vector, so it is rounded by the same code
    alignas(64) float buf[w] = {};
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    body(fb::load_aligned(buf)).store_aligned(buf);
    std::memcpy(out + i, buf, (n - i) * sizeof(float));
  }
}

#if defined(__AVX512F__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class Arch>
void f16_hardware_avx512(const float* in, float* out, std::size_t n) noexcept {
  constexpr int rne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(in + i), rne)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, in + i), rne)));
  }
}

// vcvtneps2bf16 and a shift back; lanes holding a float32 subnormal (which the instruction
// flushes) are redone with the integer rounding when `keep_subnormals`.
template <class Arch>
[[gnu::target("avx512bf16"), gnu::always_inline]] inline __m512 bf16_hardware_one(
    __m512 x) noexcept {
  const __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// The integer rounding of the lanes of `sub` (float32 subnormals), merged into r.
template <class Arch>
[[gnu::always_inline]] inline __m512 bf16_subnormal_fix(__m512 r, __m512 x,
                                                        __mmask16 sub) noexcept {
  const __m512i xi = _mm512_castps_si512(x);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(xi, 16), _mm512_set1_epi32(1));
  const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(xi, _mm512_set1_epi32(0x7fff)), odd);
  return _mm512_castsi512_ps(_mm512_mask_and_epi32(_mm512_castps_si512(r), sub, sum,
                                                   _mm512_set1_epi32(std::int32_t(0xffff0000u))));
}
template <class Arch>
[[gnu::target("avx512bf16")]] void bf16_hardware_avx512(const float* in, float* out, std::size_t n,
                                                        bool keep_subnormals) noexcept {
  // Subnormal inputs are rare: one test per two vectors, the fix-up off the main path.
  // Two vectors are converted by one vcvtne2ps2bf16; one word permutation each puts a vector's
  // 16 results into the high halves of its lanes (zeroing the low halves).
  const __mmask16 none = 0;
  alignas(64) std::int16_t lo_idx[32], hi_idx[32];
  for (int k = 0; k < 16; ++k) {
    lo_idx[2 * k] = lo_idx[2 * k + 1] = static_cast<std::int16_t>(k);
    hi_idx[2 * k] = hi_idx[2 * k + 1] = static_cast<std::int16_t>(16 + k);
  }
  const __m512i lo = _mm512_load_si512(lo_idx), hi = _mm512_load_si512(hi_idx);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(in + i), x1 = _mm512_loadu_ps(in + i + 16);
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);  // x0's words first
    __m512 r0 = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xaaaaaaaa, lo, h));
    __m512 r1 = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xaaaaaaaa, hi, h));
    const __mmask16 s0 = keep_subnormals ? _mm512_fpclass_ps_mask(x0, 0x20) : none;  // denormal
    const __mmask16 s1 = keep_subnormals ? _mm512_fpclass_ps_mask(x1, 0x20) : none;
    if (__builtin_expect(_kor_mask16(s0, s1) != 0, 0)) {
      r0 = bf16_subnormal_fix<Arch>(r0, x0, s0);
      r1 = bf16_subnormal_fix<Arch>(r1, x1, s1);
    }
    _mm512_storeu_ps(out + i, r0);
    _mm512_storeu_ps(out + i + 16, r1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
    __m512 r = bf16_hardware_one<Arch>(x);
    if (keep_subnormals) r = bf16_subnormal_fix<Arch>(r, x, _mm512_fpclass_ps_mask(x, 0x20));
    _mm512_mask_storeu_ps(out + i, m, r);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#if defined(__F16C__)
template <class Arch>
void f16_hardware_f16c(const float* in, float* out, std::size_t n) noexcept {
  constexpr int rne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(in + i), rne)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    _mm256_store_ps(buf, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_load_ps(buf), rne)));
    std::memcpy(out + i, buf, (n - i) * sizeof(float));
  }
}
#endif

template <class Arch>
void stochastic_kernel(const kernel_params& params, const float* in, float* out, std::size_t n,
                       std::uint64_t first_index) noexcept {
  const kernel_params p = params;
  using fb = xsimd::batch<float, Arch>;
  constexpr std::size_t w = fb::size, block = 256;
  static_assert(block % w == 0);
  const kernel_consts<Arch> c(p);
  alignas(64) float u[block], buf[block];
  for (std::size_t b = 0; b < n; b += block) {
    const std::size_t len = n - b < block ? n - b : block;
    const std::size_t padded = (len + w - 1) / w * w;
    for (std::size_t k = 0; k < padded; ++k) u[k] = stochastic_u(p.seed, first_index + b + k);
    const float* src = in + b;
    float* dst = out + b;
    if (len != padded) {
      std::memcpy(buf, in + b, len * sizeof(float));
      for (std::size_t k = len; k < padded; ++k) buf[k] = 0.0f;
      src = dst = buf;
    }
    for (std::size_t k = 0; k < padded; k += w)
      round_stochastic<Arch>(p, c, fb::load_unaligned(src + k), fb::load_aligned(u + k))
          .store_unaligned(dst + k);
    if (len != padded) std::memcpy(out + b, buf, len * sizeof(float));
  }
}

template <class Arch>
void fake_quantize_span(const kernel_params& params, const float* in, float* out, std::size_t n,
                        std::uint64_t first_index) noexcept;

/// out[i] = round_to(format, in[i], options, first_index + i) for i < n, for the format and
/// options `p` was made from. `in` and `out` are the same span or do not overlap.
template <class Arch>
void fake_quantize_kernel(const kernel_params& params, const float* in, float* out, std::size_t n,
                          std::uint64_t first_index) noexcept {
  // A 64-byte vector that is not 64-byte aligned straddles two cache lines on every load and
  // store: 6.8 -> 4.2 G elements/s for fp8 on 64 MiB in memory. The first elements up to the
  // output's next vector boundary are rounded on their own (every element is rounded alone, so
  // the split does not change a bit).
  constexpr std::size_t bytes = xsimd::batch<float, Arch>::size * sizeof(float);
  if constexpr (bytes > 16) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(out) % bytes;
    if (mis != 0 && mis % sizeof(float) == 0 && n > 4 * bytes / sizeof(float)) {
      const std::size_t head = (bytes - mis) / sizeof(float);
      fake_quantize_span<Arch>(params, in, out, head, first_index);
      in += head;
      out += head;
      n -= head;
      first_index += head;
    }
  }
  fake_quantize_span<Arch>(params, in, out, n, first_index);
}

template <class Arch>
void fake_quantize_span(const kernel_params& params, const float* in, float* out, std::size_t n,
                        std::uint64_t first_index) noexcept {
  using fb = xsimd::batch<float, Arch>;
  // A local copy: the stores (may-alias vector types) would otherwise make the compiler reload
  // every parameter in the loop.
  const kernel_params p = params;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    if (p.hw == kernel_params::hardware::f16) return f16_hardware_avx512<Arch>(in, out, n);
    if (p.hw == kernel_params::hardware::bf16 && __builtin_cpu_supports("avx512bf16"))
      return bf16_hardware_avx512<Arch>(in, out, n, !p.flush_in);
  }
#endif
#if defined(__F16C__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>)
    if (p.hw == kernel_params::hardware::f16) return f16_hardware_f16c<Arch>(in, out, n);
#endif
  const kernel_consts<Arch> c(p);
  switch (p.kind) {
    case kernel_params::path::small_rne:
      for_each_batch<Arch>(in, out, n, [&](fb x) { return round_small_rne<Arch>(c, x); });
      return;
    case kernel_params::path::wide_rne:
      for_each_batch<Arch>(in, out, n, [&](fb x) { return round_wide_rne<Arch>(p, c, x); });
      return;
    case kernel_params::path::stochastic:
      stochastic_kernel<Arch>(p, in, out, n, first_index);
      return;
    case kernel_params::path::generic:
      break;
  }
  switch (p.mode) {
    case rounding::toward_zero:
      for_each_batch<Arch>(
          in, out, n, [&](fb x) { return round_generic<rounding::toward_zero, Arch>(p, c, x); });
      return;
    case rounding::nearest_away:
      for_each_batch<Arch>(
          in, out, n, [&](fb x) { return round_generic<rounding::nearest_away, Arch>(p, c, x); });
      return;
    default:
      for_each_batch<Arch>(
          in, out, n, [&](fb x) { return round_generic<rounding::nearest_even, Arch>(p, c, x); });
      return;
  }
}

}  // namespace detail

/// One architecture's format kernels.
struct kernel_table {
  const char* name;
  /// out[i] = round_to(format, in[i], options, first_index + i) for i < n (see kernel_params).
  void (*fake_quantize)(const kernel_params& p, const float* in, float* out, std::size_t n,
                        std::uint64_t first_index) noexcept;
};

/// The kernels of one architecture (instantiate it in a translation unit compiled for Arch).
template <class Arch>
kernel_table make_kernels() noexcept {
  return {Arch::name(), &detail::fake_quantize_kernel<Arch>};
}

/// The kernels the including translation unit's compile flags allow; no set-up needed. The
/// per-architecture ones chosen at run time are in format/dispatch.hpp.
inline kernel_table default_kernels() noexcept { return make_kernels<xsimd::default_arch>(); }

/// out[i] = round_to(f, in[i], opt, first_index + i) for every i, with kernels `k`; split into
/// pieces over `pool`'s threads when given and the span is large. The result does not depend on
/// the kernels or the thread count. `in` and `out` have the same size and are the same span or
/// do not overlap.
inline void fake_quantize(const kernel_table& k, const float_format& f, const round_options& opt,
                          std::span<const float> in, std::span<float> out,
                          std::uint64_t first_index = 0, fq::thread_pool* pool = nullptr) {
  if (in.size() != out.size())
    throw error(errc::invalid_argument, "", "fake_quantize: input and output sizes differ");
  const kernel_params p = kernel_params::of(f, opt);
  constexpr std::size_t piece = std::size_t{1} << 16;  // elements; keeps threads' work coarse
  if (!pool || pool->size() < 2 || in.size() < 4 * piece) {
    k.fake_quantize(p, in.data(), out.data(), in.size(), first_index);
    return;
  }
  const std::size_t pieces = (in.size() + piece - 1) / piece;
  pool->parallel_for(pieces, [&](std::size_t b, std::size_t e, std::size_t) {
    const std::size_t lo = b * piece, hi = e * piece < in.size() ? e * piece : in.size();
    k.fake_quantize(p, in.data() + lo, out.data() + lo, hi - lo, first_index + lo);
  });
}

}  // namespace fq::format
