// SPDX-License-Identifier: MIT
// The evaluator's leaf kernels, written once for any xsimd architecture and collected in a table of
// function pointers that is chosen at run time. Only these leaves are compiled per instruction set;
// everything around them (tiling, threads, containers) is ordinary code, so no standard-library
// template is ever instantiated with AVX flags and picked by the linker for the whole program.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../config.hpp"

namespace fq::llama {

/// One instruction set's kernels.
struct kernel_table {
  const char* name;
  /// Rows per packed weight panel (two vectors).
  std::size_t panel_rows;
  /// Tokens per packed activation panel.
  std::size_t panel_tokens;
  /// Σ a[i]·b[i]
  float (*dot)(const float* a, const float* b, std::size_t n) noexcept;
  /// y[t·ldy + r] = Σ_k panel[k·panel_rows + r] · x[t][k] for r < rows (≤ panel_rows) and
  /// t < tokens. `panel` holds panel_rows weight rows transposed (pack_panel); `xp` the tokens in
  /// panels of panel_tokens, each k-major (pack_tokens). Each output is one fused multiply-add
  /// chain over k in order, so the result does not depend on the tiling.
  void (*gemm)(const float* panel, std::size_t rows, const float* xp, std::size_t tokens,
               std::size_t k_len, float* y, std::size_t ldy) noexcept;
  /// y[i] += a · x[i]
  void (*axpy)(float a, const float* x, float* y, std::size_t n) noexcept;
  /// Σ exp(x[i] − shift), the exponentials in float, the sum in double (as llama-perplexity).
  double (*sum_exp)(const float* x, std::size_t n, float shift) noexcept;
};

/// Transposes `rows` (≤ panel_rows) weight rows of k_len floats into a panel of k_len × panel_rows
/// floats, zero-filling missing rows.
inline void pack_panel(const float* w, std::size_t rows, std::size_t k_len, std::size_t panel_rows,
                       float* panel) noexcept {
  for (std::size_t k = 0; k < k_len; ++k) {
    float* dst = panel + k * panel_rows;
    for (std::size_t r = 0; r < rows; ++r) dst[r] = w[r * k_len + k];
    for (std::size_t r = rows; r < panel_rows; ++r) dst[r] = 0.0f;
  }
}

/// Packs `tokens` rows of k_len floats into panels of `panel_tokens`, each stored k-major
/// (xp[p][k·panel_tokens + t]), the last one zero-padded; so the kernel's broadcasts read
/// consecutive floats instead of rows a page apart (which would share L1 sets).
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
constexpr std::size_t panel_tokens_of() noexcept {
  // Accumulators: 2·NT vectors; with the two panel vectors and a broadcast they must fit the
  // register file (16 for SSE/AVX2, 32 for AVX-512).
  return xsimd::batch<float, Arch>::size >= 16 ? 12 : 6;
}

// NT tokens × two vectors of panel rows, accumulated in registers over the whole of k: per step
// two panel loads, NT broadcasts of consecutive floats and 2·NT fused multiply-adds, no horizontal
// reductions. The token loop is unrolled through an index sequence so the accumulators stay in
// registers.
template <class Arch, std::size_t... T>
FQ_FORCE_INLINE void gemm_micro(std::index_sequence<T...>, const float* panel, std::size_t rows,
                                const float* xp, std::size_t tokens, std::size_t k_len, float* y,
                                std::size_t ldy) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t v = batch::size, nt = sizeof...(T);
  batch acc0[nt] = {(static_cast<void>(T), batch(0.0f))...};
  batch acc1[nt] = {(static_cast<void>(T), batch(0.0f))...};
  for (std::size_t k = 0; k < k_len; ++k) {
    const batch p0 = batch::load_unaligned(panel + k * 2 * v);
    const batch p1 = batch::load_unaligned(panel + k * 2 * v + v);
    const float* xk = xp + k * nt;
    ((acc0[T] = fmadd<Arch>(p0, batch(xk[T]), acc0[T]),
      acc1[T] = fmadd<Arch>(p1, batch(xk[T]), acc1[T])),
     ...);
  }
  if (rows == 2 * v && tokens == nt) {
    ((acc0[T].store_unaligned(y + T * ldy), acc1[T].store_unaligned(y + T * ldy + v)), ...);
  } else {
    alignas(64) float tmp[nt][2 * v];
    ((acc0[T].store_aligned(tmp[T]), acc1[T].store_aligned(tmp[T] + v)), ...);
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t r = 0; r < rows; ++r) y[t * ldy + r] = tmp[t][r];
  }
}

template <class Arch>
void gemm_kernel(const float* panel, std::size_t rows, const float* xp, std::size_t tokens,
                 std::size_t k_len, float* y, std::size_t ldy) noexcept {
  constexpr std::size_t NT = panel_tokens_of<Arch>();
  for (std::size_t t = 0; t < tokens; t += NT) {
    const std::size_t nt = tokens - t < NT ? tokens - t : NT;
    gemm_micro<Arch>(std::make_index_sequence<NT>{}, panel, rows, xp + t * k_len, nt, k_len,
                     y + t * ldy, ldy);
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

}  // namespace detail

/// The kernel table of one architecture (instantiate it in a translation unit compiled for Arch).
template <class Arch>
kernel_table make_kernels() noexcept {
  return {Arch::name(),
          2 * xsimd::batch<float, Arch>::size,
          detail::panel_tokens_of<Arch>(),
          &detail::dot_kernel<Arch>,
          &detail::gemm_kernel<Arch>,
          &detail::axpy_kernel<Arch>,
          &detail::sum_exp_kernel<Arch>};
}

/// The kernels the including translation unit's compile flags allow; no set-up needed.
inline kernel_table default_kernels() noexcept { return make_kernels<xsimd::default_arch>(); }

}  // namespace fq::llama
