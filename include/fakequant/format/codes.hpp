// SPDX-License-Identifier: MIT
// The bit patterns ("codes") of a float format: encode float32 → code and decode code → float32.
//
// A code is laid out sign, exponent, mantissa from the top bit down, in the low 1 + E + M bits
// (E bits for the unsigned e8m0), held in uint8, uint16 or uint32 as fits (code_bytes).
// Special codes:
//   ieee    Inf = all-ones exponent, mantissa 0; NaN encodes as all-ones exponent with the top
//           mantissa bit (the quiet NaN: bf16 7FC0, fp16 7E00, e5m2 7E), keeping the sign
//   fn      NaN = all ones (e4m3fn 0x7F, 0xFF); no Inf
//   fnuz    NaN = 0x80 (the would-be −0); zero is only 0x00
//   e8m0    unsigned 2^(c − 127); NaN = 0xFF; no zero
//   finite  (fp6, fp4) no NaN code: NaN encodes as the −0 code (fp4 0x8, fp6 0x20), as ml_dtypes
//           does for +NaN, and so decodes to −0. Likewise ieee_eXm0, whose all-ones exponent holds
//           only Inf. fake-quantizing (round_to) keeps NaN as NaN; only codes lose it.
//
// encode() is an integer implementation of the rounding, independent of round_to() (which works
// in float arithmetic); the tests hold the two equal. Stochastic rounding is the exception: it is
// defined by round_to's arithmetic, so its codes are the codes of round_to's values.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "../error.hpp"
#include "float_format.hpp"

namespace fq::format {

/// Bits of a code: 1 + E + M, or E for the unsigned e8m0.
constexpr int code_bits(const float_format& f) noexcept {
  return (f.enc == encoding::e8m0 ? 0 : 1) + f.exp_bits + f.man_bits;
}

/// Bytes of the smallest unsigned integer holding a code: 1, 2 or 4.
constexpr int code_bytes(const float_format& f) noexcept {
  const int b = code_bits(f);
  return b <= 8 ? 1 : b <= 16 ? 2 : 4;
}

/// Whether NaN has a code of its own (fp6, fp4 and ieee_eXm0 have none).
constexpr bool has_nan_code(const float_format& f) noexcept {
  return f.enc != encoding::finite && !(f.enc == encoding::ieee && f.man_bits == 0);
}

/// The code a NaN encodes to (with sign `neg` where the format keeps it); see the file comment.
constexpr std::uint32_t nan_code(const float_format& f, bool neg = false) noexcept {
  const std::uint32_t sign = std::uint32_t{1} << (f.exp_bits + f.man_bits);
  const std::uint32_t exp_ones = ((std::uint32_t{1} << f.exp_bits) - 1) << f.man_bits;
  switch (f.enc) {
    case encoding::ieee:
      if (f.man_bits == 0) return sign;
      return (neg ? sign : 0) | exp_ones | (std::uint32_t{1} << (f.man_bits - 1));
    case encoding::fn:
      return (neg ? sign : 0) | exp_ones | ((std::uint32_t{1} << f.man_bits) - 1);
    case encoding::fnuz:
      return sign;
    case encoding::e8m0:
      return exp_ones;
    case encoding::finite:
      return sign;
  }
  return sign;
}

/// The largest finite magnitude code (sign bit clear).
constexpr std::uint32_t max_finite_code(const float_format& f) noexcept {
  const std::uint32_t all = (std::uint32_t{1} << (f.exp_bits + f.man_bits)) - 1;
  switch (f.enc) {
    case encoding::ieee:
      return (((std::uint32_t{1} << f.exp_bits) - 1) << f.man_bits) - 1;
    case encoding::fn:
    case encoding::e8m0:
      return all - 1;
    default:
      return all;
  }
}

/// The float32 value of `code` (bits above code_bits(f) are ignored). NaN codes give a quiet NaN
/// with the code's sign; in fp6/fp4 every code is a number (see nan_code).
inline float decode(const float_format& f, std::uint32_t code) noexcept {
  const int eb = f.exp_bits, mb = f.man_bits;
  code &= code_bits(f) == 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << code_bits(f)) - 1;
  const bool signed_fmt = f.enc != encoding::e8m0;
  const bool neg = signed_fmt && (code >> (eb + mb)) != 0;
  const std::uint32_t mag = signed_fmt ? code & ((std::uint32_t{1} << (eb + mb)) - 1) : code;
  const std::uint32_t e = mag >> mb, m = mag & ((std::uint32_t{1} << mb) - 1);
  const std::uint32_t e_ones = (std::uint32_t{1} << eb) - 1;
  const float nan =
      neg ? -std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::quiet_NaN();
  switch (f.enc) {
    case encoding::ieee:
      if (e == e_ones) return m == 0 ? (neg ? -INFINITY : INFINITY) : nan;
      break;
    case encoding::fn:
      if (mag == ((e_ones << mb) | ((std::uint32_t{1} << mb) - 1))) return nan;
      break;
    case encoding::fnuz:
      if (neg && mag == 0) return std::numeric_limits<float>::quiet_NaN();
      break;
    case encoding::e8m0:
      if (e == e_ones) return nan;
      return std::ldexp(1.0f, static_cast<int>(e) - f.bias);
    case encoding::finite:
      break;
  }
  // Subnormal: m · 2^(min_exp − M); normal: (2^M + m) · 2^(e − bias − M). Both exact in float32.
  const float v = e == 0 ? std::ldexp(static_cast<float>(m), f.min_exp() - mb)
                         : std::ldexp(static_cast<float>((std::uint32_t{1} << mb) + m),
                                      static_cast<int>(e) - f.bias - mb);
  return neg ? -v : v;
}

namespace detail {

// The code of x rounded by opt.rounding (not stochastic), in integer arithmetic on the float32
// bits. It mirrors round_to's order of cases: NaN, Inf, input flush, e8m0's zero and sign, zero,
// then rounding, overflow after rounding, output flush.
inline std::uint32_t encode_bits(const float_format& f, float x,
                                 const round_options& opt) noexcept {
  const int mb = f.man_bits;
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const bool neg = (u >> 31) != 0;
  std::uint32_t a = u & 0x7fffffffu;
  const std::uint32_t sign_bit = std::uint32_t{1} << (f.exp_bits + mb);
  const bool e8 = f.enc == encoding::e8m0;
  auto with_sign = [&](std::uint32_t mag) -> std::uint32_t {
    if (e8) return mag;                                 // unsigned
    if (f.enc == encoding::fnuz && mag == 0) return 0;  // no −0 code
    return neg ? (mag | sign_bit) : mag;
  };
  auto overflowed = [&](bool input_inf) -> std::uint32_t {
    const std::uint32_t maxc = with_sign(max_finite_code(f));
    if (opt.rounding == rounding::toward_zero && !input_inf) return maxc;
    if (opt.overflow == overflow::saturate ||
        (opt.overflow == overflow::saturate_inf && !input_inf))
      return maxc;
    if (f.has_inf()) return with_sign(((std::uint32_t{1} << f.exp_bits) - 1) << mb);
    return f.has_nan() ? nan_code(f, neg) : maxc;
  };
  if (a > 0x7f800000u) return nan_code(f, neg);
  if (a == 0x7f800000u) return overflowed(true);
  if (opt.flush_input_subnormals && a < 0x00800000u) a = 0;
  if (e8 && (a == 0 || neg)) return opt.overflow == overflow::saturate ? 0 : nan_code(f);
  if (a == 0) return with_sign(0);

  // a = sig · 2^k exactly; its binade exponent is e.
  const std::uint32_t fe = a >> 23;
  const std::uint64_t sig = fe == 0 ? a : (a & 0x7fffffu) | 0x800000u;
  const int k = fe == 0 ? -149 : static_cast<int>(fe) - 150;
  const int e =
      fe == 0 ? static_cast<int>(std::bit_width(a)) - 1 - 149 : static_cast<int>(fe) - 127;
  const int eq = e < f.min_exp() ? f.min_exp() : e;  // subnormals share the lowest binade's ulp
  // Count n of ulps 2^(eq − M): sig shifted right by `shift` ≥ 0 (no format is finer than f32).
  int shift = eq - mb - k;
  if (shift > 40) shift = 40;  // sig < 2^24: the same quotient (0) and the same "below half"
  std::uint64_t n = sig >> shift;
  const std::uint64_t rem = sig & ((std::uint64_t{1} << shift) - 1);
  const std::uint64_t half = shift == 0 ? 0 : std::uint64_t{1} << (shift - 1);
  if (shift > 0) {
    if (opt.rounding == rounding::nearest_even)
      n += (rem > half || (rem == half && (n & 1))) ? 1 : 0;
    else if (opt.rounding == rounding::nearest_away)
      n += rem >= half ? 1 : 0;
  }
  // Magnitude code: ((eq − min_exp) << M) + n, where n includes the implicit bit for normals (so a
  // carry out of the mantissa steps the exponent). e8m0 has no implicit-bit shift and no zero.
  std::uint64_t mag;
  if (e8) {
    if (n == 0) n = 1;
    mag = static_cast<std::uint64_t>(eq - f.min_exp()) + n - 1;
  } else {
    mag = (static_cast<std::uint64_t>(eq - f.min_exp()) << mb) + n;
  }
  if (mag > max_finite_code(f)) return overflowed(false);
  if (!e8 && opt.flush_output_subnormals && mag < (std::uint64_t{1} << mb)) mag = 0;
  return with_sign(static_cast<std::uint32_t>(mag));
}

template <class Code>
inline constexpr bool is_code_type =
    std::is_same_v<Code, std::uint8_t> || std::is_same_v<Code, std::uint16_t> ||
    std::is_same_v<Code, std::uint32_t>;

template <class Code>
void check_code_spans(const float_format& f, std::size_t n_in, std::size_t n_out) {
  if (static_cast<int>(sizeof(Code)) < code_bytes(f))
    throw error(errc::invalid_argument, "",
                std::string(f.name) + " codes need " + std::to_string(code_bits(f)) +
                    " bits, more than the " + std::to_string(8 * sizeof(Code)) +
                    "-bit code type given");
  if (n_in != n_out)
    throw error(errc::invalid_argument, "",
                "code and float spans differ in length (" + std::to_string(n_in) + " and " +
                    std::to_string(n_out) + ")");
}

}  // namespace detail

/// The code of x rounded to `f` as `opt` says (the code of round_to(f, x, opt, index)).
/// Example: encode(fp8_e4m3, 464.0f, {}) == 0x7E (448, the even neighbour).
inline std::uint32_t encode(const float_format& f, float x, const round_options& opt,
                            std::uint64_t index = 0) noexcept {
  if (opt.rounding != rounding::stochastic) return detail::encode_bits(f, x, opt);
  // round_to's value is exact in f, so truncating it with no flush is just its code.
  round_options exact;
  exact.rounding = rounding::toward_zero;
  exact.overflow = overflow::ieee;
  return detail::encode_bits(f, round_to(f, x, opt, index), exact);
}

/// Encodes `in` into `out` (same length; Code uint8_t, uint16_t or uint32_t, at least
/// code_bytes(f) wide). Element i uses stochastic index first_index + i. Throws fq::error on a
/// length mismatch or a code type too narrow.
template <class Code>
requires detail::is_code_type<Code>
void encode(const float_format& f, std::span<const float> in, std::span<Code> out,
            const round_options& opt, std::uint64_t first_index = 0) {
  detail::check_code_spans<Code>(f, in.size(), out.size());
  for (std::size_t i = 0; i < in.size(); ++i)
    out[i] = static_cast<Code>(encode(f, in[i], opt, first_index + i));
}

/// Decodes `in` into `out` (same length). Throws fq::error as encode does.
template <class Code>
requires detail::is_code_type<Code>
void decode(const float_format& f, std::span<const Code> in, std::span<float> out) {
  detail::check_code_spans<Code>(f, in.size(), out.size());
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = decode(f, std::uint32_t{in[i]});
}

}  // namespace fq::format
