// SPDX-License-Identifier: MIT
// Narrow floating-point formats (BF16, FP16, FP8, FP6, FP4, E8M0, any IEEE-like eXmY) and the exact
// scalar rounding of float32 values to them: the reference every faster kernel must equal.
//
// Rounding is done once, from the float32 value, in float32 arithmetic that is exact: the value is
// divided by the spacing of the target format at its binade (a power of two, so the division is
// exact), rounded to an integer, and multiplied back. A carry into the next binade falls out of the
// multiplication; overflow is tested after rounding.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../error.hpp"

namespace fq::format {

namespace detail {
// 2^k exactly, for -149 ≤ k ≤ 127 (float32 subnormals included); std::ldexp costs a library call,
// which made the reference too slow for sweeps over all 2^32 inputs.
constexpr float pow2f(int k) noexcept {
  return std::bit_cast<float>(k >= -126 ? static_cast<std::uint32_t>(k + 127) << 23
                                        : std::uint32_t{1} << (k + 149));
}
// The e with 2^e ≤ a < 2^(e+1), for finite a > 0 (float32 subnormals included).
constexpr int binade_of(float a) noexcept {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(a);
  return b >= 0x00800000u ? static_cast<int>(b >> 23) - 127 : 31 - std::countl_zero(b) - 149;
}
}  // namespace detail

/// How a format spends its codes on special values.
enum class encoding {
  ieee,    ///< all-ones exponent holds Inf and NaN (bf16, fp16, e5m2, ieee_eXmY)
  fn,      ///< finite; NaN only at all-ones exponent and mantissa (e4m3fn)
  fnuz,    ///< finite; NaN at the negative-zero code, no −0 (e4m3fnuz, e5m2fnuz)
  finite,  ///< neither Inf nor NaN (OCP MX fp6, fp4)
  e8m0,    ///< unsigned powers of two; NaN at 0xFF; no zero (OCP MX scale)
};

enum class rounding { nearest_even, toward_zero, nearest_away, stochastic };

/// What a value beyond the largest finite one becomes.
enum class overflow {
  saturate,      ///< ±max finite; Inf inputs saturate too
  saturate_inf,  ///< finite overflow saturates, but ±Inf inputs stay Inf (or NaN where no Inf)
  ieee,          ///< ±Inf where the format has Inf, NaN where it has only NaN
};

/// The command-line names of the rounding modes (nearest-even, toward-zero, nearest-away,
/// stochastic); nullopt for any other name.
inline std::optional<rounding> rounding_from_name(std::string_view n) noexcept {
  if (n == "nearest-even") return rounding::nearest_even;
  if (n == "toward-zero") return rounding::toward_zero;
  if (n == "nearest-away") return rounding::nearest_away;
  if (n == "stochastic") return rounding::stochastic;
  return std::nullopt;
}

/// The command-line names of the overflow policies (saturate, saturate-inf, ieee); nullopt for
/// any other name.
inline std::optional<overflow> overflow_from_name(std::string_view n) noexcept {
  if (n == "saturate") return overflow::saturate;
  if (n == "saturate-inf") return overflow::saturate_inf;
  if (n == "ieee") return overflow::ieee;
  return std::nullopt;
}

struct float_format {
  std::string_view name;
  int exp_bits;
  int man_bits;
  int bias;
  encoding enc;

  bool has_inf() const noexcept { return enc == encoding::ieee; }
  bool has_nan() const noexcept { return enc != encoding::finite; }
  /// Exponent of the smallest normal value.
  int min_exp() const noexcept { return enc == encoding::e8m0 ? -bias : 1 - bias; }
  /// Exponent of the largest finite binade.
  int max_exp() const noexcept {
    const int all_ones = (1 << exp_bits) - 1;
    switch (enc) {
      case encoding::ieee:
        return all_ones - 1 - bias;
      case encoding::e8m0:
        return all_ones - 1 - bias;
      default:
        return all_ones - bias;
    }
  }
  /// The largest finite value.
  float max_finite() const noexcept {
    // fn formats lose the all-ones mantissa of the top binade to NaN.
    const float frac =
        enc == encoding::fn ? 2.0f - detail::pow2f(1 - man_bits) : 2.0f - detail::pow2f(-man_bits);
    return (man_bits == 0 ? 1.0f : frac) * detail::pow2f(max_exp());
  }
  /// The default overflow policy: what hardware casts do for formats with Inf, saturation else.
  overflow default_overflow() const noexcept {
    return enc == encoding::ieee ? overflow::ieee : overflow::saturate;
  }
};

inline constexpr float_format bf16{"bf16", 8, 7, 127, encoding::ieee};
inline constexpr float_format fp16{"fp16", 5, 10, 15, encoding::ieee};
inline constexpr float_format fp8_e4m3{"fp8_e4m3", 4, 3, 7, encoding::fn};
inline constexpr float_format fp8_e5m2{"fp8_e5m2", 5, 2, 15, encoding::ieee};
inline constexpr float_format fp8_e4m3fnuz{"fp8_e4m3fnuz", 4, 3, 8, encoding::fnuz};
inline constexpr float_format fp8_e5m2fnuz{"fp8_e5m2fnuz", 5, 2, 16, encoding::fnuz};
inline constexpr float_format fp6_e3m2{"fp6_e3m2", 3, 2, 3, encoding::finite};
inline constexpr float_format fp6_e2m3{"fp6_e2m3", 2, 3, 1, encoding::finite};
inline constexpr float_format fp4_e2m1{"fp4_e2m1", 2, 1, 1, encoding::finite};
inline constexpr float_format e8m0{"e8m0", 8, 0, 127, encoding::e8m0};

inline constexpr float_format predefined_formats[] = {
    bf16, fp16, fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1, e8m0};

/// A format by name: a predefined one, or `ieee_eXmY` (1 ≤ X ≤ 8, Y ≤ 23), IEEE-like with bias
/// 2^(X-1) − 1, Inf and NaN. `ieee_e4m3` has max 240: it is not fp8_e4m3 (E4M3FN, max 448).
inline float_format format_from_name(std::string_view name) {
  for (const auto& f : predefined_formats)
    if (f.name == name) return f;
  if (name.starts_with("ieee_e")) {
    const auto m = name.find('m', 6);
    if (m != std::string_view::npos && m > 6 && m + 1 < name.size()) {
      int x = 0, y = 0;
      bool digits = true;
      for (char c : name.substr(6, m - 6)) digits &= c >= '0' && c <= '9', x = x * 10 + (c - '0');
      for (char c : name.substr(m + 1)) digits &= c >= '0' && c <= '9', y = y * 10 + (c - '0');
      if (digits && x >= 2 && x <= 8 && y <= 23 && (m - 6) <= 2 && name.size() - m - 1 <= 2) {
        // Names must outlive the format: keep them in a fixed table of all eXmY spellings.
        static constexpr std::string_view table[] = {
#define FQ_M(X, Y) "ieee_e" #X "m" #Y
#define FQ_ROW(X)                                                                                 \
  FQ_M(X, 0), FQ_M(X, 1), FQ_M(X, 2), FQ_M(X, 3), FQ_M(X, 4), FQ_M(X, 5), FQ_M(X, 6), FQ_M(X, 7), \
      FQ_M(X, 8), FQ_M(X, 9), FQ_M(X, 10), FQ_M(X, 11), FQ_M(X, 12), FQ_M(X, 13), FQ_M(X, 14),    \
      FQ_M(X, 15), FQ_M(X, 16), FQ_M(X, 17), FQ_M(X, 18), FQ_M(X, 19), FQ_M(X, 20), FQ_M(X, 21),  \
      FQ_M(X, 22), FQ_M(X, 23)
            FQ_ROW(2), FQ_ROW(3), FQ_ROW(4), FQ_ROW(5),
            FQ_ROW(6), FQ_ROW(7), FQ_ROW(8)
#undef FQ_ROW
#undef FQ_M
        };
        return {table[(x - 2) * 24 + y], x, y, (1 << (x - 1)) - 1, encoding::ieee};
      }
    }
  }
  std::string known;
  for (const auto& f : predefined_formats)
    known += std::string(known.empty() ? "" : ", ") + std::string(f.name);
  throw error(errc::invalid_argument, "",
              "unknown format '" + std::string(name) + "' (known: " + known +
                  ", and ieee_eXmY with 2 ≤ X ≤ 8, Y ≤ 23)");
}

/// Options of a rounding.
struct round_options {
  format::rounding rounding = format::rounding::nearest_even;
  format::overflow overflow = format::overflow::saturate;
  bool flush_input_subnormals = false;   ///< float32 subnormal inputs read as zero (x86 BF16 HW)
  bool flush_output_subnormals = false;  ///< results below the format's normal range become zero
  std::uint64_t seed = 0;                ///< stochastic rounding
};

/// Checks that `opt` makes sense for `f` (a format without Inf or NaN cannot overflow to them).
inline void check_options(const float_format& f, const round_options& opt) {
  if (opt.overflow != overflow::saturate && f.enc == encoding::finite)
    throw error(errc::invalid_argument, "",
                std::string(f.name) + " has neither Inf nor NaN: only --overflow saturate applies");
}

namespace detail {
// Uniform in [0, 1) from (seed, index): the same bits for an element whatever the thread or width.
// Forced inline: the per-architecture kernels call it (see FQ_FORCE_INLINE).
FQ_FORCE_INLINE float stochastic_u(std::uint64_t seed, std::uint64_t index) noexcept {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + index * 0xd1b54a32d192ed03ull + 1;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<float>(x >> 40) * 0x1.0p-24f;
}
}  // namespace detail

/// x rounded to format `f` and returned as float32. `index` keys the stochastic rounding.
inline float round_to(const float_format& f, float x, const round_options& opt,
                      std::uint64_t index = 0) noexcept {
  if (std::isnan(x)) return x;
  const bool neg = std::signbit(x);
  float a = std::fabs(x);
  const float maxf = f.max_finite();
  auto signed_result = [&](float r) {
    if (f.enc == encoding::e8m0) return r;                  // unsigned
    if (f.enc == encoding::fnuz && r == 0.0f) return 0.0f;  // no −0 code
    return neg ? -r : r;
  };
  auto overflowed = [&](bool input_inf) -> float {
    if (opt.rounding == rounding::toward_zero && !input_inf) return signed_result(maxf);
    switch (opt.overflow) {
      case overflow::saturate:
        return signed_result(maxf);
      case overflow::saturate_inf:
        if (!input_inf) return signed_result(maxf);
        [[fallthrough]];
      case overflow::ieee:
        if (f.has_inf()) return neg ? -INFINITY : INFINITY;
        return f.has_nan() ? std::numeric_limits<float>::quiet_NaN() : signed_result(maxf);
    }
    return signed_result(maxf);
  };
  if (std::isinf(a)) return overflowed(true);
  if (opt.flush_input_subnormals && a < std::numeric_limits<float>::min()) a = 0.0f;
  if (f.enc == encoding::e8m0 && (a == 0.0f || neg)) {
    // No zero and no sign: the smallest code when saturating, NaN otherwise.
    return opt.overflow == overflow::saturate ? detail::pow2f(f.min_exp())
                                              : std::numeric_limits<float>::quiet_NaN();
  }
  if (a == 0.0f) return signed_result(0.0f);
  int e = detail::binade_of(a);          // a in [2^e, 2^(e+1))
  if (e < f.min_exp()) e = f.min_exp();  // subnormals share the smallest binade's spacing
  const float ulp = detail::pow2f(e - f.man_bits);
  const float q = a / ulp;  // exact: a power-of-two division within float32's range
  float n = q;
  switch (opt.rounding) {
    case rounding::nearest_even:
      n = std::nearbyint(q);
      break;
    case rounding::toward_zero:
      n = std::trunc(q);
      break;
    case rounding::nearest_away:
      n = std::round(q);
      break;
    case rounding::stochastic:
      n = std::floor(q + detail::stochastic_u(opt.seed, index));
      break;
  }
  float r = n * ulp;
  if (f.enc == encoding::e8m0 && r < detail::pow2f(f.min_exp())) r = detail::pow2f(f.min_exp());
  if (r > maxf) return overflowed(false);
  if (opt.flush_output_subnormals && r < detail::pow2f(f.min_exp())) r = 0.0f;
  return signed_result(r);
}

/// The binary16 bits of a float32 value rounded to fp16 (nearest even, overflow to Inf).
inline std::uint16_t to_f16_bits(float x) noexcept {
  round_options o;
  o.overflow = overflow::ieee;
  const float v = round_to(fp16, x, o);
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const std::uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a >= 0x7f800000u)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a < 0x38800000u)  // a binary16 subnormal: an exact multiple of 2^-24
    return static_cast<std::uint16_t>(
        sign | static_cast<std::uint32_t>(std::bit_cast<float>(a) * 16777216.0f));
  return static_cast<std::uint16_t>(sign | (((a >> 23) - 112) << 10) | ((a >> 13) & 0x3ffu));
}

}  // namespace fq::format
