// SPDX-License-Identifier: MIT
// Scaled fake quantization: values are divided by a scale, rounded to the format, and multiplied
// back. Three modes:
//   none    no scale (the default; test 1).
//   tensor  one float32 scale = amax / max finite of the format (the FP8 recipe), amax over the
//           finite values; x / scale and q · scale are float32 operations.
//   block   OCP MX: blocks of B elements along each row share a power-of-two E8M0 scale
//           X = 2^clamp(floor(log2 amax) − emax_elem, −127, 127) (the floor rule of OCP MX §6.3
//           and microxcaling; emax_elem is the format's largest binade exponent: 8 for E4M3, 2 for
//           E2M1). The last block of a row may be shorter. Elements saturate, as MX elements do;
//           a rounding that still overflows is clamped (pytorch/ao#436). An all-zero block gets
//           scale code 0x00 (2^−127); a block holding NaN or ±Inf gets the NaN scale 0xFF, so all
//           its elements become NaN (OCP MX: a NaN scale makes the whole block NaN; torchao).
// Dividing and multiplying by X is exact while the quotients stay float32 normals; only blocks
// within 2^−100 or so of float32's underflow can lose bits there.
//
// The rounding itself is a callable taking (in, out, first_index, options), so a faster per-span
// kernel slots in for the scalar round_to loop without touching the scaling.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "float_format.hpp"

namespace fq::format {

enum class scale_mode { none, tensor, block };

struct scaling {
  scale_mode mode = scale_mode::none;
  std::size_t block = 32;  ///< elements per block (scale_mode::block)
};

/// Parses `none`, `tensor`, `block` (32 elements) or `block:B` (B ≥ 1).
inline scaling scaling_from_name(std::string_view s) {
  if (s == "none") return {};
  if (s == "tensor") return {scale_mode::tensor, 32};
  if (s == "block") return {scale_mode::block, 32};
  if (s.starts_with("block:") && s.size() > 6 && s.size() <= 6 + 9) {
    std::size_t b = 0;
    bool digits = true;
    for (char c : s.substr(6)) digits &= c >= '0' && c <= '9', b = b * 10 + (c - '0');
    if (digits && b >= 1) return {scale_mode::block, b};
  }
  throw error(errc::invalid_argument, "",
              "unknown scaling '" + std::string(s) +
                  "' (known: none, tensor, block, block:B with B ≥ 1 elements per block)");
}

/// The largest magnitude among the finite values of `x` (0 when there is none).
inline float finite_amax(std::span<const float> x) noexcept {
  float m = 0.0f;
  for (float v : x)
    if (std::isfinite(v)) m = std::max(m, std::fabs(v));
  return m;
}

/// The per-tensor scale amax / max finite; 1 when amax is 0 (or the quotient underflows).
inline float tensor_scale(const float_format& f, std::span<const float> x) noexcept {
  const float s = finite_amax(x) / f.max_finite();
  return s > 0.0f ? s : 1.0f;
}

/// The E8M0 code of the shared scale of one MX block of elements in format `elem` (floor rule).
/// Example: an FP4 block with amax 7.0 gets 0x7F (2^0), and 7.0 then rounds to 6.0.
inline std::uint8_t block_scale_code(const float_format& elem, std::span<const float> x) noexcept {
  float amax = 0.0f;
  for (float v : x) {
    if (!std::isfinite(v)) return 0xFF;
    amax = std::max(amax, std::fabs(v));
  }
  if (amax == 0.0f) return 0x00;
  int e;
  std::frexp(amax, &e);  // amax in [2^(e−1), 2^e): floor(log2 amax) = e − 1, exact for subnormals
  const int s = std::clamp(e - 1 - elem.max_exp(), -127, 127);
  return static_cast<std::uint8_t>(s + 127);
}

/// What a scaled rounding did (for reports).
struct scale_summary {
  float tensor_scale = 1.0f;     ///< scale_mode::tensor
  std::uint64_t blocks = 0;      ///< scale_mode::block: blocks rounded
  std::uint64_t nan_blocks = 0;  ///< blocks with the NaN scale (NaN or Inf inside)
  std::uint8_t min_code = 0xFF;  ///< smallest and largest non-NaN scale codes
  std::uint8_t max_code = 0x00;
};

/// Rounds `in` to `f` under scaling `s` into `out` (same length; may be the same span). Rows of
/// `row_length` elements (0: one row) start new blocks. `round(in, out, first_index, opt)` rounds
/// a span unscaled (in and out may alias), element i keyed by stochastic index first_index + i:
/// indices are the elements' positions in `in`, whatever the mode.
template <class Round>
scale_summary fake_quantize_scaled(const float_format& f, std::span<const float> in,
                                   std::span<float> out, const round_options& opt, const scaling& s,
                                   std::size_t row_length, Round&& round) {
  if (in.size() != out.size())
    throw error(errc::invalid_argument, "", "scaled rounding: input and output lengths differ");
  scale_summary sum;
  if (s.mode == scale_mode::none) {
    round(in, out, 0, opt);
    return sum;
  }
  if (s.mode == scale_mode::tensor) {
    const float scale = tensor_scale(f, in);
    sum.tensor_scale = scale;
    std::vector<float> tmp(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) tmp[i] = in[i] / scale;
    round(std::span<const float>(tmp), std::span<float>(tmp), 0, opt);
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = tmp[i] * scale;
    return sum;
  }
  if (s.block == 0) throw error(errc::invalid_argument, "", "scaled rounding: block size 0");
  const std::size_t row = row_length == 0 ? in.size() : row_length;
  round_options elem_opt = opt;
  elem_opt.overflow = overflow::saturate;  // MX elements clamp
  std::vector<float> tmp(std::min(s.block, in.size()));
  for (std::size_t r0 = 0; r0 < in.size(); r0 += row) {
    const std::size_t r1 = std::min(in.size(), r0 + row);
    for (std::size_t b0 = r0; b0 < r1; b0 += s.block) {
      const std::size_t n = std::min(s.block, r1 - b0);
      const auto blk = in.subspan(b0, n);
      const std::uint8_t code = block_scale_code(f, blk);
      ++sum.blocks;
      if (code == 0xFF) {
        ++sum.nan_blocks;
        std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(b0), n,
                    std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      sum.min_code = std::min(sum.min_code, code);
      sum.max_code = std::max(sum.max_code, code);
      // 2^−e and 2^e are float32 values (2^−127 a subnormal): one exact multiply each way.
      const int e = static_cast<int>(code) - 127;
      const float down = std::ldexp(1.0f, -e), up = std::ldexp(1.0f, e);
      const std::span<float> t(tmp.data(), n);
      for (std::size_t i = 0; i < n; ++i) t[i] = blk[i] * down;
      round(std::span<const float>(t), t, b0, elem_opt);
      for (std::size_t i = 0; i < n; ++i) out[b0 + i] = t[i] * up;
    }
  }
  return sum;
}

/// fake_quantize_scaled with the scalar reference rounding (round_to).
inline scale_summary fake_quantize_scaled(const float_format& f, std::span<const float> in,
                                          std::span<float> out, const round_options& opt,
                                          const scaling& s, std::size_t row_length = 0) {
  return fake_quantize_scaled(f, in, out, opt, s, row_length,
                              [&](std::span<const float> a, std::span<float> b, std::uint64_t first,
                                  const round_options& o) {
                                for (std::size_t i = 0; i < a.size(); ++i)
                                  b[i] = round_to(f, a[i], o, first + i);
                              });
}

}  // namespace fq::format
