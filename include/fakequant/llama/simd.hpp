// SPDX-License-Identifier: MIT
// The evaluator's leaf kernels, written once for any xsimd architecture and collected in a table of
// function pointers that is chosen at run time. Only these leaves are compiled per instruction set;
// everything around them (tiling, threads, containers) is ordinary code, so no standard-library
// template is ever instantiated with AVX flags and picked by the linker for the whole program.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__) || defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../config.hpp"

namespace fq::llama {

/// One instruction set's kernels.
struct kernel_table {
  const char* name;
  /// Weight rows per register tile (products of a block of rows are computed this many at a time).
  std::size_t tile_rows;
  /// Tokens per packed activation panel (two vectors).
  std::size_t panel_tokens;
  /// Σ a[i]·b[i]
  float (*dot)(const float* a, const float* b, std::size_t n) noexcept;
  /// y[t·ldy + r] = Σ_k w[r·w_stride + k] · x[t][k] for r < rows and t < tokens, where `xp` holds
  /// the tokens packed by pack_tokens. Each output is one fused multiply-add chain over k in order,
  /// so the result does not depend on the tiling or the thread that computes it.
  void (*gemm)(const float* w, std::size_t w_stride, std::size_t rows, const float* xp,
               std::size_t tokens, std::size_t k_len, float* y, std::size_t ldy) noexcept;
  /// y[i] += a · x[i]
  void (*axpy)(float a, const float* x, float* y, std::size_t n) noexcept;
  /// x[i] ← exp(scale·x[i] − max_j scale·x[j]); returns Σ x[i] (the softmax's denominator).
  float (*softmax)(float* x, std::size_t n, float scale) noexcept;
  /// Σ exp(x[i] − shift), the exponentials in float, the sum in double (as llama-perplexity).
  double (*sum_exp)(const float* x, std::size_t n, float shift) noexcept;
  /// Benchmark baseline: `iterations` steps of 2 × tile_rows independent register-resident fused
  /// multiply-adds; returns a value that depends on all of them. Floating-point operations done:
  /// iterations × 2 × tile_rows × 2 × fma_lanes.
  float (*fma_peak)(std::size_t iterations) noexcept;
  std::size_t fma_lanes;
  /// IEEE binary16 to float32, exactly (the hardware conversion where the CPU has one).
  void (*f16_to_f32)(const std::uint16_t* h, float* out, std::size_t n) noexcept;
  /// Σ f16(w[i])·x[i]: a weight row stored as F16 times float activations, without a buffer.
  float (*dot_f16)(const std::uint16_t* w, const float* x, std::size_t n) noexcept;
  /// out[b] = Σ_{i<block} w[b·block + i] · a[b·block + i] for b < n_blocks, exactly in int32
  /// (ggml's integer block products; `block` a multiple of 32).
  void (*dot_i16_blocks)(const std::int16_t* w, const std::int16_t* a, std::size_t n_blocks,
                         std::size_t block, std::int32_t* out) noexcept;
  /// out[i] = Σ_{j<4} w[4i + j] · a[4i + j] for i < n / 4 (n a multiple of 32): the eight 32-bit
  /// lanes of ggml's 32-element Q8_0 block product.
  void (*dot_i16_quads)(const std::int16_t* w, const std::int16_t* a, std::size_t n,
                        std::int32_t* out) noexcept;
  /// ggml's Q8_0 block product of the weight row w (n_blocks blocks of 32 values, scales dw) and
  /// each of the n ≤ 4 activation rows a + j·a_stride (scales da + j·da_stride) into
  /// out[j·out_stride]: eight float lanes, lane l += (dw·da) × (integer sum of elements 4l … 4l+3
  /// of the block) in one rounding, then the lanes added as its hsum_float_8. The rows share the
  /// weight loads and their independent chains hide the FMA latency; each output's arithmetic is
  /// that of its product alone.
  void (*dot_q8_0)(const std::int16_t* w, const float* dw, const std::int16_t* a,
                   std::size_t a_stride, const float* da, std::size_t da_stride, std::size_t n,
                   std::size_t n_blocks, float* out, std::size_t out_stride) noexcept;
};

/// Packs `tokens` rows of k_len floats into panels of `panel_tokens`, each stored k-major
/// (xp[p][k·panel_tokens + t]), the last one zero-padded: the kernel then loads the same k of
/// several tokens as one vector.
inline void pack_tokens(const float* x, std::size_t tokens, std::size_t k_len,
                        std::size_t panel_tokens, float* xp) noexcept {
  for (std::size_t t0 = 0; t0 < tokens; t0 += panel_tokens) {
    float* dst = xp + t0 * k_len;
    const std::size_t nt = tokens - t0 < panel_tokens ? tokens - t0 : panel_tokens;
    for (std::size_t k = 0; k < k_len; ++k) {
      for (std::size_t t = 0; t < nt; ++t) dst[k * panel_tokens + t] = x[(t0 + t) * k_len + k];
      for (std::size_t t = nt; t < panel_tokens; ++t) dst[k * panel_tokens + t] = 0.0f;
    }
  }
}

/// Floats needed by pack_tokens for `tokens` rows.
inline std::size_t packed_tokens_size(std::size_t tokens, std::size_t k_len,
                                      std::size_t panel_tokens) noexcept {
  return (tokens + panel_tokens - 1) / panel_tokens * panel_tokens * k_len;
}

namespace detail {

// a·b + c in one rounding. xsimd 8.1 has no AVX-512 fma: its generic fallback is a multiply and
// an add (two roundings, twice the instructions), so AVX-512 calls the intrinsic itself.
template <class Arch>
FQ_FORCE_INLINE xsimd::batch<float, Arch> fmadd(xsimd::batch<float, Arch> a,
                                                xsimd::batch<float, Arch> b,
                                                xsimd::batch<float, Arch> c) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return _mm512_fmadd_ps(a, b, c);
#endif
  return xsimd::fma(a, b, c);
}

template <class Arch>
FQ_FORCE_INLINE float reduce(xsimd::batch<float, Arch> v) noexcept {
  return xsimd::hadd(v);
}

template <class Arch>
float dot_kernel(const float* a, const float* b, std::size_t n) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t w = batch::size;
  batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  std::size_t i = 0;
  for (; i + 4 * w <= n; i += 4 * w) {
    s0 = fmadd<Arch>(batch::load_unaligned(a + i), batch::load_unaligned(b + i), s0);
    s1 = fmadd<Arch>(batch::load_unaligned(a + i + w), batch::load_unaligned(b + i + w), s1);
    s2 =
        fmadd<Arch>(batch::load_unaligned(a + i + 2 * w), batch::load_unaligned(b + i + 2 * w), s2);
    s3 =
        fmadd<Arch>(batch::load_unaligned(a + i + 3 * w), batch::load_unaligned(b + i + 3 * w), s3);
  }
  for (; i + w <= n; i += w)
    s0 = fmadd<Arch>(batch::load_unaligned(a + i), batch::load_unaligned(b + i), s0);
  float s = reduce<Arch>((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <class Arch>
constexpr std::size_t tile_rows_of() noexcept {
  // Accumulators: 2 vectors per row; with two activation vectors and a broadcast they must fit
  // the register file (16 for SSE/AVX2, 32 for AVX-512).
  return xsimd::batch<float, Arch>::size >= 16 ? 12 : 6;
}

// MR weight rows × one panel of two vectors of tokens, accumulated in registers over the whole of
// k: per step two activation loads, MR broadcasts and 2·MR fused multiply-adds. The row loop is
// unrolled through an index sequence so the accumulators stay in registers.
template <class Arch, std::size_t... R>
FQ_FORCE_INLINE void gemm_micro(std::index_sequence<R...>, const float* w, std::size_t w_stride,
                                const float* xp, std::size_t tokens, std::size_t k_len, float* y,
                                std::size_t ldy) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t v = batch::size, mr = sizeof...(R);
  batch acc0[mr] = {(static_cast<void>(R), batch(0.0f))...};
  batch acc1[mr] = {(static_cast<void>(R), batch(0.0f))...};
  for (std::size_t k = 0; k < k_len; ++k) {
    const batch x0 = batch::load_unaligned(xp + k * 2 * v);
    const batch x1 = batch::load_unaligned(xp + k * 2 * v + v);
    ((acc0[R] = fmadd<Arch>(batch(w[R * w_stride + k]), x0, acc0[R]),
      acc1[R] = fmadd<Arch>(batch(w[R * w_stride + k]), x1, acc1[R])),
     ...);
  }
  alignas(64) float tmp[mr][2 * v];
  ((acc0[R].store_aligned(tmp[R]), acc1[R].store_aligned(tmp[R] + v)), ...);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < mr; ++r) y[t * ldy + r] = tmp[r][t];
}

template <class Arch>
void gemm_kernel(const float* w, std::size_t w_stride, std::size_t rows, const float* xp,
                 std::size_t tokens, std::size_t k_len, float* y, std::size_t ldy) noexcept {
  constexpr std::size_t MR = tile_rows_of<Arch>(), PT = 2 * xsimd::batch<float, Arch>::size;
  for (std::size_t t = 0; t < tokens; t += PT) {
    const std::size_t nt = tokens - t < PT ? tokens - t : PT;
    const float* xpt = xp + t * k_len;
    std::size_t r = 0;
    for (; r + MR <= rows; r += MR)
      gemm_micro<Arch>(std::make_index_sequence<MR>{}, w + r * w_stride, w_stride, xpt, nt, k_len,
                       y + t * ldy + r, ldy);
    for (; r + 4 <= rows; r += 4)
      gemm_micro<Arch>(std::make_index_sequence<4>{}, w + r * w_stride, w_stride, xpt, nt, k_len,
                       y + t * ldy + r, ldy);
    for (; r < rows; ++r)
      gemm_micro<Arch>(std::make_index_sequence<1>{}, w + r * w_stride, w_stride, xpt, nt, k_len,
                       y + t * ldy + r, ldy);
  }
}

template <class Arch>
void axpy_kernel(float a, const float* x, float* y, std::size_t n) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t w = batch::size;
  const batch av(a);
  std::size_t i = 0;
  for (; i + w <= n; i += w)
    fmadd<Arch>(av, batch::load_unaligned(x + i), batch::load_unaligned(y + i))
        .store_unaligned(y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

template <class Arch>
float softmax_kernel(float* x, std::size_t n, float scale) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t w = batch::size;
  const batch sv(scale);
  batch vmax(-INFINITY);
  std::size_t i = 0;
  for (; i + w <= n; i += w) {
    const batch v = batch::load_unaligned(x + i) * sv;
    v.store_unaligned(x + i);
    vmax = xsimd::max(vmax, v);
  }
  alignas(64) float lanes[w];
  vmax.store_aligned(lanes);
  float mx = -INFINITY;
  for (std::size_t l = 0; l < w; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
  for (; i < n; ++i) {
    x[i] *= scale;
    mx = x[i] > mx ? x[i] : mx;
  }
  const batch mv(mx);
  batch acc(0.0f);
  i = 0;
  for (; i + w <= n; i += w) {
    const batch e = xsimd::exp(batch::load_unaligned(x + i) - mv);
    e.store_unaligned(x + i);
    acc += e;
  }
  float sum = reduce<Arch>(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  return sum;
}

template <class Arch>
double sum_exp_kernel(const float* x, std::size_t n, float shift) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t w = batch::size;
  const batch sv(shift);
  // Partial sums in float over short runs keep the error far below the double total's needs while
  // staying vectorized; each run is then added in double.
  double total = 0.0;
  std::size_t i = 0;
  while (i + w <= n) {
    batch acc(0.0f);
    const std::size_t run_end = i + 64 * w, full = n - (n - i) % w;
    const std::size_t end = run_end < full ? run_end : full;  // no std::min in per-arch code
    for (; i < end; i += w) acc += xsimd::exp(batch::load_unaligned(x + i) - sv);
    total += static_cast<double>(reduce<Arch>(acc));
  }
  for (; i < n; ++i) total += static_cast<double>(std::exp(x[i] - shift));
  return total;
}

template <class Arch, std::size_t... I>
FQ_FORCE_INLINE float fma_peak_impl(std::index_sequence<I...>, std::size_t iterations) noexcept {
  using batch = xsimd::batch<float, Arch>;
  batch acc[sizeof...(I)] = {batch(1.0f + static_cast<float>(I) * 1e-3f)...};
  const batch m(0.9999999f), c(1e-7f);
  for (std::size_t n = 0; n < iterations; ++n) ((acc[I] = fmadd<Arch>(acc[I], m, c)), ...);
  batch s(0.0f);
  ((s += acc[I]), ...);
  return reduce<Arch>(s);
}

template <class Arch>
float fma_peak_kernel(std::size_t iterations) noexcept {
  // As many independent chains as the GEMM's accumulators: enough to cover the FMA latency.
  return fma_peak_impl<Arch>(std::make_index_sequence<2 * tile_rows_of<Arch>()>{}, iterations);
}

// Exact scalar binary16 → float32 (subnormals, infinities and NaN payloads included).
FQ_FORCE_INLINE float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

template <class Arch>
void f16_to_f32_kernel(const std::uint16_t* h, float* out, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>)
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(
          out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
#endif
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
#endif
  for (; i < n; ++i) out[i] = half_to_float(h[i]);
}

template <class Arch>
float dot_f16_kernel(const std::uint16_t* w, const float* x, std::size_t n) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 w0 =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
      const __m512 w1 =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)));
      s0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + i), s0);
      s1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + i + 16), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; ++i) s += half_to_float(w[i]) * x[i];
    return s;
  }
#endif
  // Elsewhere: convert a block into a small buffer and use the float dot product.
  alignas(64) float buf[256];
  float s = 0.0f;
  for (std::size_t i = 0; i < n; i += 256) {
    const std::size_t m = n - i < 256 ? n - i : 256;
    f16_to_f32_kernel<Arch>(w + i, buf, m);
    s += dot_kernel<Arch>(buf, x + i, m);
  }
  return s;
}

template <class Arch>
void dot_i16_blocks_kernel(const std::int16_t* w, const std::int16_t* a, std::size_t n_blocks,
                           std::size_t block, std::int32_t* out) noexcept {
#if defined(__AVX512BW__)
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    for (std::size_t b = 0; b < n_blocks; ++b) {
      const std::int16_t* wb = w + b * block;
      const std::int16_t* ab = a + b * block;
      __m512i acc = _mm512_setzero_si512();
      for (std::size_t i = 0; i < block; i += 32)
        acc = _mm512_add_epi32(
            acc, _mm512_madd_epi16(_mm512_loadu_si512(wb + i), _mm512_loadu_si512(ab + i)));
      out[b] = _mm512_reduce_add_epi32(acc);
    }
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    for (std::size_t b = 0; b < n_blocks; ++b) {
      const std::int16_t* wb = w + b * block;
      const std::int16_t* ab = a + b * block;
      __m256i acc = _mm256_setzero_si256();
      for (std::size_t i = 0; i < block; i += 16)
        acc = _mm256_add_epi32(
            acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + i)),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + i))));
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
      out[b] = _mm_cvtsi128_si32(s);
    }
    return;
  }
#endif
  for (std::size_t b = 0; b < n_blocks; ++b) {
    std::int32_t acc = 0;
    for (std::size_t i = 0; i < block; ++i)
      acc += static_cast<std::int32_t>(w[b * block + i]) * a[b * block + i];
    out[b] = acc;
  }
}

template <class Arch>
void dot_i16_quads_kernel(const std::int16_t* w, const std::int16_t* a, std::size_t n,
                          std::int32_t* out) noexcept {
#if defined(__AVX512BW__)
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    for (std::size_t i = 0; i < n; i += 32) {
      const __m512i p = _mm512_madd_epi16(_mm512_loadu_si512(w + i), _mm512_loadu_si512(a + i));
      // Each 64-bit lane: its two pair sums added in the low half, then narrowed.
      const __m512i q = _mm512_add_epi32(p, _mm512_srli_epi64(p, 32));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 4), _mm512_cvtepi64_epi32(q));
    }
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) {
    for (std::size_t i = 0; i < n; i += 32) {
      const __m256i p0 =
          _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
      const __m256i p1 =
          _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16)));
      // hadd leaves quads 0 1 4 5 | 2 3 6 7; the 64-bit permute puts them in order.
      const __m256i q = _mm256_permute4x64_epi64(_mm256_hadd_epi32(p0, p1), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 4), q);
    }
    return;
  }
#endif
  for (std::size_t i = 0; i < n; i += 4) {
    std::int32_t acc = 0;
    for (std::size_t j = 0; j < 4; ++j) acc += static_cast<std::int32_t>(w[i + j]) * a[i + j];
    out[i / 4] = acc;
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// The eight 32-bit lane sums (elements 4l … 4l+3) of one 32-value block product.
template <class Arch>
FQ_FORCE_INLINE __m256i q8_0_quads(const std::int16_t* w, const std::int16_t* a) noexcept {
#if defined(__AVX512BW__)
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
    const __m512i p = _mm512_madd_epi16(_mm512_loadu_si512(w), _mm512_loadu_si512(a));
    return _mm512_cvtepi64_epi32(_mm512_add_epi32(p, _mm512_srli_epi64(p, 32)));
  }
#endif
  const __m256i p0 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
  const __m256i p1 =
      _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16)),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 16)));
  // hadd leaves quads 0 1 4 5 | 2 3 6 7; the 64-bit permute puts them in order.
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(p0, p1), 0xD8);
}

template <std::size_t N, class Arch>
FQ_FORCE_INLINE void dot_q8_0_rows(const std::int16_t* w, const float* dw, const std::int16_t* a,
                                   std::size_t a_stride, const float* da, std::size_t da_stride,
                                   std::size_t n_blocks, float* out,
                                   std::size_t out_stride) noexcept {
  __m256 acc[N];
  for (std::size_t j = 0; j < N; ++j) acc[j] = _mm256_setzero_ps();
  for (std::size_t b = 0; b < n_blocks; ++b) {
    for (std::size_t j = 0; j < N; ++j) {
      const __m256i quads = q8_0_quads<Arch>(w + 32 * b, a + j * a_stride + 32 * b);
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw[b] * da[j * da_stride + b]),
                               _mm256_cvtepi32_ps(quads), acc[j]);
    }
  }
  // hsum_float_8 of each: h = high half + low half, then (h0 + h2) + (h1 + h3); for four rows
  // on their 4 × 4 transpose, which does the same additions lane by lane.
  __m128 h[4];
  for (std::size_t j = 0; j < N; ++j)
    h[j] = _mm_add_ps(_mm256_extractf128_ps(acc[j], 1), _mm256_castps256_ps128(acc[j]));
  if constexpr (N == 4) {
    _MM_TRANSPOSE4_PS(h[0], h[1], h[2], h[3]);
    alignas(16) float r[4];
    _mm_store_ps(r, _mm_add_ps(_mm_add_ps(h[0], h[2]), _mm_add_ps(h[1], h[3])));
    for (std::size_t j = 0; j < 4; ++j) out[j * out_stride] = r[j];
  } else {
    for (std::size_t j = 0; j < N; ++j) {
      __m128 v = _mm_add_ps(h[j], _mm_movehl_ps(h[j], h[j]));
      v = _mm_add_ss(v, _mm_movehdup_ps(v));
      out[j * out_stride] = _mm_cvtss_f32(v);
    }
  }
}
#endif

template <class Arch>
void dot_q8_0_kernel(const std::int16_t* w, const float* dw, const std::int16_t* a,
                     std::size_t a_stride, const float* da, std::size_t da_stride, std::size_t n,
                     std::size_t n_blocks, float* out, std::size_t out_stride) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch> || std::is_base_of_v<xsimd::avx512bw, Arch>) {
    switch (n) {
      case 4:
        return dot_q8_0_rows<4, Arch>(w, dw, a, a_stride, da, da_stride, n_blocks, out, out_stride);
      case 3:
        return dot_q8_0_rows<3, Arch>(w, dw, a, a_stride, da, da_stride, n_blocks, out, out_stride);
      case 2:
        return dot_q8_0_rows<2, Arch>(w, dw, a, a_stride, da, da_stride, n_blocks, out, out_stride);
      default:
        for (std::size_t j = 0; j < n; ++j)
          dot_q8_0_rows<1, Arch>(w, dw, a + j * a_stride, 0, da + j * da_stride, 0, n_blocks,
                                 out + j * out_stride, 0);
        return;
    }
  }
#endif
  for (std::size_t j = 0; j < n; ++j) {
    float lane[8] = {};
    std::int32_t q[8];
    for (std::size_t b = 0; b < n_blocks; ++b) {
      dot_i16_quads_kernel<Arch>(w + 32 * b, a + j * a_stride + 32 * b, 32, q);
      const float d = dw[b] * da[j * da_stride + b];
      for (std::size_t l = 0; l < 8; ++l) lane[l] = std::fma(d, static_cast<float>(q[l]), lane[l]);
    }
    float h[4];
    for (std::size_t l = 0; l < 4; ++l) h[l] = lane[l + 4] + lane[l];
    out[j * out_stride] = (h[0] + h[2]) + (h[1] + h[3]);
  }
}

}  // namespace detail

/// The kernel table of one architecture (instantiate it in a translation unit compiled for Arch).
template <class Arch>
kernel_table make_kernels() noexcept {
  return {Arch::name(),
          detail::tile_rows_of<Arch>(),
          2 * xsimd::batch<float, Arch>::size,
          &detail::dot_kernel<Arch>,
          &detail::gemm_kernel<Arch>,
          &detail::axpy_kernel<Arch>,
          &detail::softmax_kernel<Arch>,
          &detail::sum_exp_kernel<Arch>,
          &detail::fma_peak_kernel<Arch>,
          xsimd::batch<float, Arch>::size,
          &detail::f16_to_f32_kernel<Arch>,
          &detail::dot_f16_kernel<Arch>,
          &detail::dot_i16_blocks_kernel<Arch>,
          &detail::dot_i16_quads_kernel<Arch>,
          &detail::dot_q8_0_kernel<Arch>};
}

/// The kernels the including translation unit's compile flags allow; no set-up needed.
inline kernel_table default_kernels() noexcept { return make_kernels<xsimd::default_arch>(); }

}  // namespace fq::llama
