// SPDX-License-Identifier: MIT
// Decoders of the ggml tensor types the statistics and the evaluator read (F32, F16, BF16, Q8_0,
// Q4_0, Q4_K, Q5_K, Q6_K) into float32, block by block into a caller's buffer.
//
// The arithmetic follows gguf-py's reference dequantizers operation for operation, in float32 and
// without fused multiply-add, so the decoded values are bit-identical to theirs (and to ggml's
// scalar dequantize_row_* built without contraction). Block layouts (ggml-common.h):
//   Q8_0  34 B / 32:  f16 d, i8 q[32]                          x = d * q
//   Q4_0  18 B / 32:  f16 d, u8 qs[16] (low nibbles = 0..15,    x = d * (q - 8)
//                     high nibbles = 16..31)
//   Q4_K 144 B / 256: f16 d, f16 dmin, u8 scales[12] (8 pairs of 6-bit scale/min), u8 qs[128]
//                     x = (d * sc) * q - (dmin * m), per 32-element group
//   Q5_K 176 B / 256: as Q4_K plus u8 qh[32] before qs: bit g of qh[l] is the fifth bit of element
//                     l of group g
//   Q6_K 210 B / 256: u8 ql[128], u8 qh[64], i8 scales[16], f16 d;   x = (d * sc) * (q - 32)
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "../config.hpp"
#include "../error.hpp"
#include "types.hpp"

namespace fq::gguf {

namespace detail {

/// Little-endian 16-bit load from unaligned bytes (GGUF data is little-endian).
FQ_FORCE_INLINE std::uint16_t load_u16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}

FQ_FORCE_INLINE std::uint8_t u8(const std::byte* p, std::size_t i) noexcept {
  return std::to_integer<std::uint8_t>(p[i]);
}

/// IEEE binary16 bits to float32, exactly (subnormals, infinities and NaN payloads included).
/// Branch-free, so loops over it vectorise: the exponent is rebiased by adding (127 - 15) << 23;
/// Inf/NaN get the rest of the way to 255; a subnormal half is built as 2^-14 * (1 + m/1024) and
/// 2^-14 subtracted, which is exact and renormalises it.
FQ_FORCE_INLINE float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t o = static_cast<std::uint32_t>(h & 0x7FFFu) << 13;
  const std::uint32_t exp = o & 0x0F800000u;
  const std::uint32_t biased = o + ((127u - 15u) << 23);
  const std::uint32_t normal = exp == 0x0F800000u ? biased + ((128u - 16u) << 23) : biased;
  const float sub = std::bit_cast<float>(biased + (1u << 23)) - std::bit_cast<float>(113u << 23);
  const std::uint32_t bits = exp == 0 ? std::bit_cast<std::uint32_t>(sub) : normal;
  return std::bit_cast<float>(bits | sign);
}

/// bfloat16 bits to float32: the top half of a float32.
FQ_FORCE_INLINE float bf16_to_float(std::uint16_t h) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

FQ_FORCE_INLINE float load_half(const std::byte* p) noexcept { return half_to_float(load_u16(p)); }

/// The 6-bit scale and min of group j (0..7) of a Q4_K / Q5_K block: groups 0-3 keep theirs in
/// the low six bits of bytes j and j+4; groups 4-7 combine a nibble of byte j+4 with the two
/// spare top bits of bytes j-4 and j.
FQ_FORCE_INLINE void k_scale_min(const std::byte* scales, int j, std::uint8_t& sc,
                                 std::uint8_t& m) noexcept {
  const auto q = [scales](int i) { return u8(scales, static_cast<std::size_t>(i)); };
  if (j < 4) {
    sc = q(j) & 63;
    m = q(j + 4) & 63;
  } else {
    sc = static_cast<std::uint8_t>((q(j + 4) & 0xF) | ((q(j - 4) >> 6) << 4));
    m = static_cast<std::uint8_t>((q(j + 4) >> 4) | ((q(j) >> 6) << 4));
  }
}

}  // namespace detail

/// Elements per block of `type` (1 for the plain float types).
constexpr std::size_t block_elements(gguf::ggml_type type) noexcept {
  return gguf::traits_of(type).block_size;
}
/// Bytes per block of `type`.
constexpr std::size_t block_bytes(gguf::ggml_type type) noexcept {
  return gguf::traits_of(type).type_size;
}

/// True for the types `decode_blocks` handles.
constexpr bool can_decode(gguf::ggml_type type) noexcept {
  using t = gguf::ggml_type;
  switch (type) {
    case t::f32:
    case t::f16:
    case t::bf16:
    case t::q8_0:
    case t::q4_0:
    case t::q4_k:
    case t::q5_k:
    case t::q6_k:
      return true;
    default:
      return false;
  }
}

/// One Q8_0 block (34 bytes) to 32 floats.
FQ_FORCE_INLINE void decode_q8_0(const std::byte* block, float* out) noexcept {
  const float d = detail::load_half(block);
  for (int i = 0; i < 32; ++i)
    out[i] = d * static_cast<float>(static_cast<std::int8_t>(detail::u8(block, 2 + i)));
}

/// One Q4_0 block (18 bytes) to 32 floats.
FQ_FORCE_INLINE void decode_q4_0(const std::byte* block, float* out) noexcept {
  const float d = detail::load_half(block);
  const std::byte* qs = block + 2;
  // Two contiguous passes (low nibbles, then high) so each loop vectorises.
  for (int i = 0; i < 16; ++i)
    out[i] = d * static_cast<float>((detail::u8(qs, static_cast<std::size_t>(i)) & 0xF) - 8);
  for (int i = 0; i < 16; ++i)
    out[i + 16] = d * static_cast<float>((detail::u8(qs, static_cast<std::size_t>(i)) >> 4) - 8);
}

namespace detail {
/// Q4_K (144 bytes) or, with the fifth bits of qh, Q5_K (176 bytes) to 256 floats. Each 32 bytes
/// of qs carry two groups of 32 (the low nibbles, then the high ones), and each group its 6-bit
/// scale and min.
template <bool FifthBit>
FQ_FORCE_INLINE void decode_k_nibbles(const std::byte* block, float* out) noexcept {
  const float d = load_half(block);
  const float dmin = load_half(block + 2);
  const std::byte* scales = block + 4;
  const std::byte* qh = block + 16;  // Q5_K only
  const std::byte* qs = block + (FifthBit ? 48 : 16);
  for (int pair = 0; pair < 4; ++pair) {
    std::uint8_t sc0, m0, sc1, m1;
    k_scale_min(scales, 2 * pair, sc0, m0);
    k_scale_min(scales, 2 * pair + 1, sc1, m1);
    const float d0 = d * static_cast<float>(sc0), min0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
    const std::byte* q = qs + 32 * pair;
    const int bit0 = 2 * pair, bit1 = 2 * pair + 1;  // the groups' bits in every qh byte
    float* y = out + 64 * pair;
    for (int l = 0; l < 32; ++l) {
      const auto i = static_cast<std::size_t>(l);
      int v0 = u8(q, i) & 0xF, v1 = u8(q, i) >> 4;
      if constexpr (FifthBit) {
        v0 |= ((u8(qh, i) >> bit0) & 1) << 4;
        v1 |= ((u8(qh, i) >> bit1) & 1) << 4;
      }
      y[l] = d0 * static_cast<float>(v0) - min0;
      y[l + 32] = d1 * static_cast<float>(v1) - min1;
    }
  }
}
}  // namespace detail

/// One Q4_K super-block (144 bytes) to 256 floats.
FQ_FORCE_INLINE void decode_q4_k(const std::byte* block, float* out) noexcept {
  detail::decode_k_nibbles<false>(block, out);
}

/// One Q5_K super-block (176 bytes) to 256 floats.
FQ_FORCE_INLINE void decode_q5_k(const std::byte* block, float* out) noexcept {
  detail::decode_k_nibbles<true>(block, out);
}

/// One Q6_K super-block (210 bytes) to 256 floats.
FQ_FORCE_INLINE void decode_q6_k(const std::byte* block, float* out) noexcept {
  const std::byte* ql = block;
  const std::byte* qh = block + 128;
  const std::byte* sc = block + 192;
  const float d = detail::load_half(block + 208);
  // Two halves of 128 elements, each four quarters of 32: quarter k takes the low (k < 2) or high
  // nibbles of ql[32 (k % 2) + l] and bits 2k, 2k+1 of qh[l]; one int8 scale per 16 elements.
  // One contiguous loop per 16 elements, so each vectorises.
  for (int half = 0; half < 2; ++half) {
    const std::byte* l4 = ql + 64 * half;
    const std::byte* h2 = qh + 32 * half;
    float* y = out + 128 * half;
    for (int k = 0; k < 4; ++k) {
      const int shift_lo = k < 2 ? 0 : 4, shift_hi = 2 * k;
      const std::byte* src = l4 + 32 * (k % 2);
      for (int g = 0; g < 2; ++g) {
        const float ds = d * static_cast<float>(static_cast<std::int8_t>(
                                 detail::u8(sc, static_cast<std::size_t>(8 * half + 2 * k + g))));
        for (int l = 16 * g; l < 16 * g + 16; ++l) {
          const auto i = static_cast<std::size_t>(l);
          const int q = (((detail::u8(src, i) >> shift_lo) & 0xF) |
                         (((detail::u8(h2, i) >> shift_hi) & 3) << 4)) -
                        32;
          y[32 * k + l] = ds * static_cast<float>(q);
        }
      }
    }
  }
}

/// Decodes `n_blocks` consecutive blocks of `type` starting at `src` into
/// `n_blocks * block_elements(type)` floats at `dst`. The caller guarantees `can_decode(type)`
/// and the sizes (an unsupported type writes nothing).
///
///     std::vector<float> row(t.ne[0]);
///     fq::gguf::decode_blocks(t.type, data.data(), t.ne[0] / block_elements(t.type),
///     row.data());
inline void decode_blocks(gguf::ggml_type type, const std::byte* src, std::size_t n_blocks,
                          float* dst) noexcept {
  using t = gguf::ggml_type;
  switch (type) {
    case t::f32:
      std::memcpy(dst, src, n_blocks * sizeof(float));  // GGUF is little-endian, as is the host
      return;
    case t::f16:
      for (std::size_t i = 0; i < n_blocks; ++i) dst[i] = detail::load_half(src + 2 * i);
      return;
    case t::bf16:
      for (std::size_t i = 0; i < n_blocks; ++i)
        dst[i] = detail::bf16_to_float(detail::load_u16(src + 2 * i));
      return;
    case t::q8_0:
      for (std::size_t i = 0; i < n_blocks; ++i) decode_q8_0(src + 34 * i, dst + 32 * i);
      return;
    case t::q4_0:
      for (std::size_t i = 0; i < n_blocks; ++i) decode_q4_0(src + 18 * i, dst + 32 * i);
      return;
    case t::q4_k:
      for (std::size_t i = 0; i < n_blocks; ++i) decode_q4_k(src + 144 * i, dst + 256 * i);
      return;
    case t::q5_k:
      for (std::size_t i = 0; i < n_blocks; ++i) decode_q5_k(src + 176 * i, dst + 256 * i);
      return;
    case t::q6_k:
      for (std::size_t i = 0; i < n_blocks; ++i) decode_q6_k(src + 210 * i, dst + 256 * i);
      return;
    default:
      return;
  }
}

/// Decodes elements [first, first + out.size()) of a tensor of `type` whose raw data is `data`.
/// `first` and `out.size()` must be multiples of the block size, and the range must lie inside
/// `data`; throws fq::error (unsupported, invalid_argument) otherwise. Decoding a row:
///
///     decode(t.type, f.tensor_data(t), row * t.ne[0], std::span(buffer).first(t.ne[0]));
inline void decode(gguf::ggml_type type, std::span<const std::byte> data, std::size_t first,
                   std::span<float> out) {
  if (!can_decode(type))
    throw error(errc::unsupported, "",
                "cannot decode tensor type " + std::string(gguf::type_name(type)));
  const std::size_t be = block_elements(type), bb = block_bytes(type);
  if (first % be != 0 || out.size() % be != 0)
    throw error(errc::invalid_argument, "",
                "decode range is not aligned to the " + std::to_string(be) + "-element blocks of " +
                    std::string(gguf::type_name(type)));
  const std::size_t b0 = first / be, nb = out.size() / be;
  if (b0 > data.size() / bb || nb > data.size() / bb - b0)
    throw error(errc::invalid_argument, "", "decode range lies outside the tensor data");
  decode_blocks(type, data.data() + b0 * bb, nb, out.data());
}

}  // namespace fq::gguf
