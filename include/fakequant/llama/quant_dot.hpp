// SPDX-License-Identifier: MIT
// Products of block-quantized weights with quantized activations, in the integer arithmetic
// ggml's CPU backend uses. ggml multiplies a Q4_0 / Q8_0 weight with activations quantized to
// Q8_0, and a Q4_K / Q5_K / Q6_K weight with activations quantized to Q8_K; within a block the
// products of the integer values (weighted by the integer sub-block scales) are summed exactly,
// and floats enter only once per block: (activation scale × weight scale) × integer sum. A float
// dot product of the dequantized values rounds every term instead, and on a model whose next
// activation quantization turns last-bit differences into different roundings that moves
// perplexity by about 0.1 %.
//
// Layout used here: a weight row is decoded into int16 values with the sub-block scale already
// multiplied in (|value| ≤ 128 · 32), one float scale per block (and for Q4_K / Q5_K the float
// dmin and the integer sub-block minimums); an activation row into int16 values, one float scale
// per block and, for Q8_K, the sums of each 32 values. The per-architecture kernel only computes
// the exact integer sum of each block (kernel_table::dot_i16_blocks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../gguf/blocks.hpp"
#include "../thread_pool.hpp"
#include "model.hpp"
#include "simd.hpp"

namespace fq::llama {

/// True for the weight types whose ggml product is an integer block dot product.
constexpr bool has_integer_dot(gguf::ggml_type t) noexcept {
  using gguf::ggml_type;
  return t == ggml_type::q4_0 || t == ggml_type::q8_0 || t == ggml_type::q4_k ||
         t == ggml_type::q5_k || t == ggml_type::q6_k;
}

namespace detail {

/// Elements per block of the integer product: 32 for Q8_0 partners, 256 (QK_K) for Q8_K.
constexpr std::size_t int_block(gguf::ggml_type t) noexcept {
  return t == gguf::ggml_type::q4_0 || t == gguf::ggml_type::q8_0 ? 32 : 256;
}

constexpr bool has_mins(gguf::ggml_type t) noexcept {
  return t == gguf::ggml_type::q4_k || t == gguf::ggml_type::q5_k;
}

/// ggml's round-to-nearest (ties to even, as its nearest_int and _mm256_round_ps do).
FQ_FORCE_INLINE int nearest(float x) noexcept { return static_cast<int>(std::nearbyint(x)); }

}  // namespace detail

/// Activations of several tokens quantized to a weight type's ggml partner (Q8_0 or Q8_K).
struct quantized_activations {
  std::size_t cols = 0, tokens = 0, block = 0;
  std::vector<std::int16_t> q;      ///< tokens × cols values
  std::vector<float> d;             ///< tokens × (cols / block) scales
  std::vector<std::int32_t> sum32;  ///< Q8_K: tokens × (cols / 32) sums of 32 values

  const std::int16_t* values(std::size_t t) const noexcept { return q.data() + t * cols; }
  const float* scales(std::size_t t) const noexcept { return d.data() + t * (cols / block); }
  const std::int32_t* sums(std::size_t t) const noexcept { return sum32.data() + t * (cols / 32); }
};

/// Quantizes `tokens` rows of `cols` floats as ggml does before a product with a `type` weight:
/// Q8_0 as its x86 quantize_row_q8_0 (scale 127/amax, the block scale stored as F16), Q8_K as
/// quantize_row_q8_K_ref (scale −127/max of the signed extreme, the block scale a float).
inline void quantize_activations(gguf::ggml_type type, const float* x, std::size_t tokens,
                                 std::size_t cols, quantized_activations& out) {
  const std::size_t bl = detail::int_block(type);
  out.cols = cols;
  out.tokens = tokens;
  out.block = bl;
  out.q.resize(tokens * cols);
  out.d.resize(tokens * (cols / bl));
  out.sum32.resize(bl == 256 ? tokens * (cols / 32) : 0);
  for (std::size_t t = 0; t < tokens; ++t) {
    const float* xr = x + t * cols;
    std::int16_t* q = out.q.data() + t * cols;
    float* d = out.d.data() + t * (cols / bl);
    for (std::size_t b = 0; b < cols / bl; ++b) {
      const float* xb = xr + b * bl;
      std::int16_t* qb = q + b * bl;
      if (bl == 32) {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = detail::round_to_f16(amax / 127.0f);
        for (std::size_t j = 0; j < 32; ++j)
          qb[j] = static_cast<std::int16_t>(detail::nearest(xb[j] * id));
      } else {
        float amax = 0.0f, max = 0.0f;
        for (std::size_t j = 0; j < 256; ++j) {
          const float ax = std::fabs(xb[j]);
          if (ax > amax) {
            amax = ax;
            max = xb[j];
          }
        }
        if (amax == 0.0f) {
          d[b] = 0.0f;
          std::fill(qb, qb + 256, std::int16_t{0});
        } else {
          const float iscale = -127.0f / max;
          d[b] = 1.0f / iscale;
          for (std::size_t j = 0; j < 256; ++j)
            qb[j] = static_cast<std::int16_t>(std::min(127, detail::nearest(iscale * xb[j])));
        }
      }
    }
    if (bl == 256) {
      std::int32_t* s = out.sum32.data() + t * (cols / 32);
      for (std::size_t g = 0; g < cols / 32; ++g) {
        std::int32_t acc = 0;
        for (std::size_t j = 0; j < 32; ++j) acc += q[g * 32 + j];
        s[g] = acc;
      }
    }
  }
}

/// One weight row decoded for the integer product.
struct int_row {
  std::int16_t* q;    ///< cols values, sub-block scale multiplied in
  float* d;           ///< per block: the weight's block scale (F16 value)
  float* dmin;        ///< Q4_K / Q5_K, per block: the minimum's scale
  std::uint8_t* min;  ///< Q4_K / Q5_K: per 32 values, the 6-bit minimum
};

/// Decodes `n_blocks` weight blocks of `type` (ggml's layouts; see gguf/blocks.hpp) into `r`.
inline void decode_int_row(gguf::ggml_type type, const std::byte* src, std::size_t n_blocks,
                           const int_row& r) noexcept {
  using gguf::ggml_type;
  using gguf::detail::load_half;
  using gguf::detail::u8;
  const std::size_t bb = gguf::block_bytes(type);
  for (std::size_t b = 0; b < n_blocks; ++b) {
    const std::byte* blk = src + b * bb;
    switch (type) {
      case ggml_type::q8_0: {
        r.d[b] = load_half(blk);
        std::int16_t* q = r.q + b * 32;
        for (std::size_t i = 0; i < 32; ++i) q[i] = static_cast<std::int8_t>(u8(blk, 2 + i));
        break;
      }
      case ggml_type::q4_0: {
        r.d[b] = load_half(blk);
        std::int16_t* q = r.q + b * 32;
        for (std::size_t i = 0; i < 16; ++i) {
          q[i] = static_cast<std::int16_t>((u8(blk, 2 + i) & 0xF) - 8);
          q[i + 16] = static_cast<std::int16_t>((u8(blk, 2 + i) >> 4) - 8);
        }
        break;
      }
      case ggml_type::q4_k:
      case ggml_type::q5_k: {
        const bool five = type == ggml_type::q5_k;
        r.d[b] = load_half(blk);
        r.dmin[b] = load_half(blk + 2);
        const std::byte* scales = blk + 4;
        const std::byte* qh = blk + 16;
        const std::byte* qs = blk + (five ? 48 : 16);
        std::int16_t* q = r.q + b * 256;
        for (int g = 0; g < 8; ++g) {
          std::uint8_t sc, m;
          gguf::detail::k_scale_min(scales, g, sc, m);
          r.min[b * 8 + static_cast<std::size_t>(g)] = m;
          const std::byte* src4 = qs + 32 * (g / 2);
          const int shift = g % 2 ? 4 : 0;
          for (std::size_t l = 0; l < 32; ++l) {
            int v = (u8(src4, l) >> shift) & 0xF;
            if (five) v |= ((u8(qh, l) >> g) & 1) << 4;
            q[32 * static_cast<std::size_t>(g) + l] = static_cast<std::int16_t>(sc * v);
          }
        }
        break;
      }
      case ggml_type::q6_k: {
        const std::byte* ql = blk;
        const std::byte* qh = blk + 128;
        const std::byte* sc = blk + 192;
        r.d[b] = load_half(blk + 208);
        std::int16_t* out = r.q + b * 256;
        for (std::size_t half = 0; half < 2; ++half) {
          const std::byte* l4 = ql + 64 * half;
          const std::byte* h2 = qh + 32 * half;
          std::int16_t* y = out + 128 * half;
          for (std::size_t k = 0; k < 4; ++k) {
            const int shift_lo = k < 2 ? 0 : 4, shift_hi = 2 * static_cast<int>(k);
            const std::byte* s = l4 + 32 * (k % 2);
            for (std::size_t l = 0; l < 32; ++l) {
              const int scale = static_cast<std::int8_t>(u8(sc, 8 * half + 2 * k + l / 16));
              const int v =
                  (((u8(s, l) >> shift_lo) & 0xF) | (((u8(h2, l) >> shift_hi) & 3) << 4)) - 32;
              y[32 * k + l] = static_cast<std::int16_t>(scale * v);
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }
}

namespace detail {

/// One output of the integer product: weight row `r` (decoded) against token activations.
struct int_dot_args {
  const kernel_table* k;
  gguf::ggml_type type;
  std::size_t cols, nb, bl;
};

FQ_FORCE_INLINE float int_dot(const int_dot_args& g, const int_row& w,
                              const quantized_activations& xq, std::size_t t,
                              std::int32_t* isum) noexcept {
  const std::int16_t* a = xq.values(t);
  const float* da = xq.scales(t);
  float sum = 0.0f;
  // Q4_0 (ggml repacks it and gives each output one lane) and the k-quants: block by block.
  g.k->dot_i16_blocks(w.q, a, g.nb, g.bl, isum);
  for (std::size_t i = 0; i < g.nb; ++i)
    sum = std::fma(da[i] * w.d[i], static_cast<float>(isum[i]), sum);
  if (has_mins(g.type)) {
    const std::int32_t* a32 = xq.sums(t);
    float msum = 0.0f;
    for (std::size_t i = 0; i < g.nb; ++i) {
      std::int32_t im = 0;
      for (std::size_t j = 0; j < 8; ++j) im += w.min[i * 8 + j] * a32[i * 8 + j];
      msum = std::fma(da[i] * w.dmin[i], static_cast<float>(im), msum);
    }
    sum -= msum;
  }
  return sum;
}

}  // namespace detail

/// y[t · rows + r] = Σ_k w[r][k] · x[t][k] in ggml's integer arithmetic, with `xq` the tokens'
/// activations quantized by quantize_activations for w's type. Per block the integer sum is
/// exact; floats enter as (activation scale × weight scale) × sum, accumulated as ggml does.
inline void matmul_int(const kernel_table& k, const weight& w, const quantized_activations& xq,
                       float* y, fq::thread_pool& pool) {
  const std::size_t cols = static_cast<std::size_t>(w.cols),
                    rows = static_cast<std::size_t>(w.rows);
  const detail::int_dot_args g{&k, w.type, cols, cols / detail::int_block(w.type),
                               detail::int_block(w.type)};
  const std::size_t n_wblocks = cols / gguf::block_elements(w.type);
  const bool mins = detail::has_mins(w.type);
  // Rows per task: decoded once, then run against every token; small enough to stay in L2.
  const std::size_t block = std::max<std::size_t>(1, (128u << 10) / (cols * 2 + 64));
  struct scratch {
    std::vector<std::int16_t> q;
    std::vector<float> d, dmin;
    std::vector<std::uint8_t> min;
    std::vector<std::int32_t> isum;
  };
  std::vector<scratch> bufs(pool.size());
  pool.parallel_for(
      (rows + block - 1) / block, [&](std::size_t b0, std::size_t b1, std::size_t thread) {
        auto& s = bufs[thread];
        s.q.resize(block * cols);
        s.d.resize(block * g.nb);
        s.dmin.resize(mins ? block * g.nb : 0);
        s.min.resize(mins ? block * (cols / 32) : 0);
        s.isum.resize(cols / 4);
        std::vector<int_row> decoded(block);
        for (std::size_t b = b0; b < b1; ++b) {
          const std::size_t r0 = b * block, nr = std::min(rows, r0 + block) - r0;
          for (std::size_t r = 0; r < nr; ++r) {
            decoded[r] = {s.q.data() + r * cols, s.d.data() + r * g.nb,
                          mins ? s.dmin.data() + r * g.nb : nullptr,
                          mins ? s.min.data() + r * (cols / 32) : nullptr};
            decode_int_row(w.type, w.row(r0 + r), n_wblocks, decoded[r]);
          }
          if (w.type == gguf::ggml_type::q8_0) {
            // ggml's Q8_0 product (vec_dot and llamafile's tinyBLAS alike), four tokens at once.
            const std::size_t da_stride = cols / 32;
            for (std::size_t t = 0; t < xq.tokens; t += 4) {
              const std::size_t nt = std::min<std::size_t>(4, xq.tokens - t);
              for (std::size_t r = 0; r < nr; ++r)
                k.dot_q8_0(decoded[r].q, decoded[r].d, xq.values(t), cols, xq.scales(t), da_stride,
                           nt, g.nb, y + t * rows + r0 + r, rows);
            }
            continue;
          }
          for (std::size_t t = 0; t < xq.tokens; ++t)
            for (std::size_t r = 0; r < nr; ++r)
              y[t * rows + r0 + r] = detail::int_dot(g, decoded[r], xq, t, s.isum.data());
        }
      });
}

}  // namespace fq::llama
