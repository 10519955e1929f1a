// SPDX-License-Identifier: MIT
// The evaluator's leaf kernels, written once for any xsimd architecture and collected in a table of
// function pointers that is chosen at run time. Only these leaves are compiled per instruction set;
// everything around them (tiling, threads, containers) is ordinary code, so no standard-library
// template is ever instantiated with AVX flags and picked by the linker for the whole program.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <xsimd/xsimd.hpp>

#include "../config.hpp"

namespace fq::llama {

/// One instruction set's kernels.
struct kernel_table {
  const char* name;
  /// Rows per packed weight panel (two vectors).
  std::size_t panel_rows;
  /// Σ a[i]·b[i]
  float (*dot)(const float* a, const float* b, std::size_t n) noexcept;
  /// y[t·ldy + r] = Σ_k panel[k·panel_rows + r] · x[t·k_len + k] for r < rows (≤ panel_rows) and
  /// t < tokens. The panel holds panel_rows weight rows transposed (see pack_panel). Each output is
  /// one fused multiply-add chain over k in order, so the result does not depend on the tiling.
  void (*gemm)(const float* panel, std::size_t rows, const float* x, std::size_t tokens,
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

namespace detail {

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
    s0 = xsimd::fma(batch::load_unaligned(a + i), batch::load_unaligned(b + i), s0);
    s1 = xsimd::fma(batch::load_unaligned(a + i + w), batch::load_unaligned(b + i + w), s1);
    s2 = xsimd::fma(batch::load_unaligned(a + i + 2 * w), batch::load_unaligned(b + i + 2 * w), s2);
    s3 = xsimd::fma(batch::load_unaligned(a + i + 3 * w), batch::load_unaligned(b + i + 3 * w), s3);
  }
  for (; i + w <= n; i += w)
    s0 = xsimd::fma(batch::load_unaligned(a + i), batch::load_unaligned(b + i), s0);
  float s = reduce<Arch>((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// NT tokens × two vectors of panel rows, accumulated in registers over the whole of k: per step
// two panel loads, NT broadcasts and 2·NT fused multiply-adds, no horizontal reductions. The token
// loop is unrolled through an index sequence so the accumulators live in registers.
template <class Arch, std::size_t... T>
FQ_FORCE_INLINE void gemm_micro(std::index_sequence<T...>, const float* panel, std::size_t rows,
                                const float* x, std::size_t k_len, float* y,
                                std::size_t ldy) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t v = batch::size;
  batch acc0[sizeof...(T)] = {(static_cast<void>(T), batch(0.0f))...};
  batch acc1[sizeof...(T)] = {(static_cast<void>(T), batch(0.0f))...};
  for (std::size_t k = 0; k < k_len; ++k) {
    const batch p0 = batch::load_unaligned(panel + k * 2 * v);
    const batch p1 = batch::load_unaligned(panel + k * 2 * v + v);
    ((acc0[T] = xsimd::fma(p0, batch(x[T * k_len + k]), acc0[T]),
      acc1[T] = xsimd::fma(p1, batch(x[T * k_len + k]), acc1[T])),
     ...);
  }
  if (rows == 2 * v) {
    ((acc0[T].store_unaligned(y + T * ldy), acc1[T].store_unaligned(y + T * ldy + v)), ...);
  } else {
    alignas(64) float tmp[sizeof...(T)][2 * v];
    ((acc0[T].store_aligned(tmp[T]), acc1[T].store_aligned(tmp[T] + v)), ...);
    for (std::size_t t = 0; t < sizeof...(T); ++t)
      for (std::size_t r = 0; r < rows; ++r) y[t * ldy + r] = tmp[t][r];
  }
}

template <class Arch>
void gemm_kernel(const float* panel, std::size_t rows, const float* x, std::size_t tokens,
                 std::size_t k_len, float* y, std::size_t ldy) noexcept {
  // Accumulators: 2·NT vectors; with the two panel vectors and a broadcast they must fit the
  // register file (16 for SSE/AVX2, 32 for AVX-512).
  constexpr std::size_t NT = xsimd::batch<float, Arch>::size >= 16 ? 12 : 6;
  std::size_t t = 0;
  for (; t + NT <= tokens; t += NT)
    gemm_micro<Arch>(std::make_index_sequence<NT>{}, panel, rows, x + t * k_len, k_len, y + t * ldy,
                     ldy);
  for (; t + 4 <= tokens; t += 4)
    gemm_micro<Arch>(std::make_index_sequence<4>{}, panel, rows, x + t * k_len, k_len, y + t * ldy,
                     ldy);
  for (; t < tokens; ++t)
    gemm_micro<Arch>(std::make_index_sequence<1>{}, panel, rows, x + t * k_len, k_len, y + t * ldy,
                     ldy);
}

template <class Arch>
void axpy_kernel(float a, const float* x, float* y, std::size_t n) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t w = batch::size;
  const batch av(a);
  std::size_t i = 0;
  for (; i + w <= n; i += w)
    xsimd::fma(av, batch::load_unaligned(x + i), batch::load_unaligned(y + i))
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
          &detail::dot_kernel<Arch>,
          &detail::gemm_kernel<Arch>,
          &detail::axpy_kernel<Arch>,
          &detail::sum_exp_kernel<Arch>};
}

/// The kernels the including translation unit's compile flags allow; no set-up needed.
inline kernel_table default_kernels() noexcept { return make_kernels<xsimd::default_arch>(); }

}  // namespace fq::llama
