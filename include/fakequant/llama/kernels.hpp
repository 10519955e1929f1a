// SPDX-License-Identifier: MIT
// The numerical building blocks of the forward pass. Every product decodes the weight's rows block
// by block into a small per-thread buffer; the model is never converted to float32 as a whole.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../config.hpp"
#include "../gguf/blocks.hpp"
#include "../thread_pool.hpp"
#include "model.hpp"
#include "simd.hpp"

namespace fq::llama {

/// How activations enter a matrix product.
enum class activations {
  /// As ggml's CPU backend does: rounded to the partner type of the weight's type (F16 for F16,
  /// BF16 for BF16, Q8_0 for Q8_0/Q4_0, Q8_K for k-quants; F32 stays F32), and the attention's
  /// K, V and Q rounded to F16 as in llama.cpp's F16 KV cache. Figures then match llama.cpp.
  ggml,
  /// Exact float32 activations: separates weight rounding from activation rounding.
  f32,
};

namespace detail {

FQ_FORCE_INLINE float round_to_f16(float x) noexcept {
  // Round to nearest even at binary16's precision, staying in float32: drop 13 mantissa bits with
  // a tie-to-even bias for normals; binary16 subnormals have a fixed step of 2^-24, which adding
  // and subtracting 0.5 (ulp 2^-24) rounds to.
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  const std::uint32_t sign = u & 0x80000000u, a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return x;                            // Inf, NaN
  if (a >= 0x477ff000u) return sign ? -INFINITY : INFINITY;  // >= 65520 overflows
  std::uint32_t r;
  if (a < 0x38800000u) {  // below 2^-14
    float f;
    std::memcpy(&f, &a, 4);
    f = (f + 0.5f) - 0.5f;
    std::memcpy(&r, &f, 4);
  } else {
    r = (a + 0x0fffu + ((a >> 13) & 1u)) & ~0x1fffu;
  }
  r |= sign;
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

FQ_FORCE_INLINE float round_to_bf16(float x) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;  // NaN stays NaN
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

/// ggml's fp16 storage of a block scale.
FQ_FORCE_INLINE float fp16_scale(float d) noexcept { return round_to_f16(d); }

}  // namespace detail

/// Rounds one activation row in place to what ggml's CPU backend multiplies with a weight of
/// `type`: the values of its vec_dot partner type (Q8_0 / Q8_K blocks are quantized and
/// dequantized the way quantize_row_q8_0 / quantize_row_q8_K do).
inline void round_activations(gguf::ggml_type type, std::span<float> x) noexcept {
  using gguf::ggml_type;
  switch (type) {
    case ggml_type::f16:
      for (auto& v : x) v = detail::round_to_f16(v);
      break;
    case ggml_type::bf16:
      for (auto& v : x) v = detail::round_to_bf16(v);
      break;
    case ggml_type::q8_0:
    case ggml_type::q4_0:
      // As ggml's x86 quantize_row_q8_0: scale 127/amax, round to nearest even, fp16 block scale.
      for (std::size_t b = 0; b + 32 <= x.size(); b += 32) {
        float amax = 0.0f;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const float dh = detail::fp16_scale(amax / 127.0f);
        for (std::size_t j = 0; j < 32; ++j) x[b + j] = std::nearbyint(x[b + j] * id) * dh;
      }
      break;
    case ggml_type::q4_k:
    case ggml_type::q5_k:
    case ggml_type::q6_k:
      for (std::size_t b = 0; b + 256 <= x.size(); b += 256) {
        float amax = 0.0f, max = 0.0f;
        for (std::size_t j = 0; j < 256; ++j) {
          const float ax = std::fabs(x[b + j]);
          if (ax > amax) {
            amax = ax;
            max = x[b + j];
          }
        }
        if (amax == 0.0f) {
          for (std::size_t j = 0; j < 256; ++j) x[b + j] = 0.0f;
          continue;
        }
        const float iscale = -127.0f / max;
        const float d = 1.0f / iscale;
        for (std::size_t j = 0; j < 256; ++j) {
          const int q = std::min(127, static_cast<int>(std::nearbyint(iscale * x[b + j])));
          x[b + j] = static_cast<float>(q) * d;
        }
      }
      break;
    default:
      break;
  }
}

/// y[t * rows + r] = Σ_k w[r][k] · x[t * cols + k] for every token t < n_tokens and row r of `w`.
/// `x` must already hold the activations as the product should see them (round_activations).
/// Activations are packed once; each thread then takes blocks of rows, decodes them block by block
/// into a buffer that stays in L2, and runs every token over them.
inline void matmul(const kernel_table& k, const weight& w, const float* x, std::size_t n_tokens,
                   float* y, fq::thread_pool& pool) {
  const std::size_t cols = static_cast<std::size_t>(w.cols),
                    rows = static_cast<std::size_t>(w.rows);
  const std::size_t be = gguf::block_elements(w.type);
  const bool small = n_tokens * 4 <= k.panel_tokens;
  std::vector<float> xp(small ? 0 : packed_tokens_size(n_tokens, cols, k.panel_tokens));
  if (!small) pack_tokens(x, n_tokens, cols, k.panel_tokens, xp.data());
  // Rows per block: a multiple of the register tile, about 256 KiB of decoded floats. Decoded rows
  // are a few floats apart more than a row, so the tile's rows do not all map to one L1 set.
  const std::size_t stride = cols + 16;
  const std::size_t block =
      std::max<std::size_t>(1, (256u << 10) / (stride * 4) / k.tile_rows) * k.tile_rows;
  std::vector<std::vector<float>> bufs(pool.size());
  pool.parallel_for(
      (rows + block - 1) / block, [&](std::size_t b0, std::size_t b1, std::size_t thread) {
        auto& buf = bufs[thread];
        buf.resize(block * stride);
        for (std::size_t b = b0; b < b1; ++b) {
          const std::size_t r0 = b * block, nr = std::min(rows, r0 + block) - r0;
          if (small && w.type == gguf::ggml_type::f16) {
            // Generation over F16 weights: converted in registers, no buffer.
            for (std::size_t r = 0; r < nr; ++r) {
              const auto* row = reinterpret_cast<const std::uint16_t*>(w.row(r0 + r));
              for (std::size_t t = 0; t < n_tokens; ++t)
                y[t * rows + r0 + r] = k.dot_f16(row, x + t * cols, cols);
            }
            continue;
          }
          for (std::size_t r = 0; r < nr; ++r) {
            float* dst = buf.data() + r * stride;
            if (w.type == gguf::ggml_type::f32) {
              std::memcpy(dst, w.row(r0 + r), cols * 4);
            } else if (w.type == gguf::ggml_type::f16) {
              k.f16_to_f32(reinterpret_cast<const std::uint16_t*>(w.row(r0 + r)), dst, cols);
            } else {
              gguf::decode_blocks(w.type, w.row(r0 + r), cols / be, dst);
            }
          }
          if (small) {
            // A few tokens (generation): dot products; a packed panel would be mostly padding.
            for (std::size_t t = 0; t < n_tokens; ++t)
              for (std::size_t r = 0; r < nr; ++r)
                y[t * rows + r0 + r] = k.dot(buf.data() + r * stride, x + t * cols, cols);
          } else {
            k.gemm(buf.data(), stride, nr, xp.data(), n_tokens, cols, y + r0, rows);
          }
        }
      });
}

/// ggml's RMS norm followed by the elementwise product with the norm weight (decoded `g`): the sum
/// of squares in double, the scale in float.
inline void rms_norm(const float* x, const float* g, std::size_t n, float eps,
                     float* out) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * g[i];
}

/// RoPE as llama.cpp applies it to LLaMA GGUF files (rope type NORM: rotating adjacent pairs; the
/// converter permuted q/k rows to make that equal to the Hugging Face rotation). The angle of pair
/// i is pos · base^(-2i/n_rot), built by repeated multiplication in float as ggml does.
/// rope_table writes cos, sin of each pair's angle at `pos` (n_rot floats); rope_apply rotates.
inline void rope_table(std::size_t n_rot, std::int64_t pos, float freq_base, float* cs) noexcept {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (std::size_t i = 0; i < n_rot; i += 2) {
    cs[i] = std::cos(theta);
    cs[i + 1] = std::sin(theta);
    theta *= theta_scale;
  }
}

inline void rope_apply(float* head, std::size_t n_rot, const float* cs) noexcept {
  for (std::size_t i = 0; i < n_rot; i += 2) {
    const float c = cs[i], s = cs[i + 1];
    const float x0 = head[i], x1 = head[i + 1];
    head[i] = x0 * c - x1 * s;
    head[i + 1] = x0 * s + x1 * c;
  }
}

}  // namespace fq::llama
