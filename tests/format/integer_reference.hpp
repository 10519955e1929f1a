// SPDX-License-Identifier: MIT
// The tests' oracle for rounding float32 to a narrow format: integer arithmetic on the bit pattern
// only, no float operation and no hardware conversion (../shared/docs/floatfmt.md §3 recommends a
// slow integer reference for the exhaustive sweeps). It shares no code with the library's
// round_to (float arithmetic), its encoder (codes.hpp) or its kernels (which use the F16C and
// AVX512-BF16 conversions where the CPU has them), so a fault in any of those shows up against it.
//
// The value of a finite float32 is M · 2^E with an integer M < 2^24. Its target binade e (the
// smallest normal binade for values below it) has the spacing 2^(e - man_bits); the value divided
// by that spacing is M shifted right by s = e - man_bits - E places, whose dropped bits decide the
// rounding. The rounded integer times the spacing is composed back into float32 bits.
#pragma once

#include <bit>
#include <cstdint>
#include <fakequant/format/float_format.hpp>

namespace fq_test {

/// Rounds float32 bit patterns to `f` under `o` (deterministic roundings only). The format's
/// constants are worked out once, in the constructor; any NaN result is 0x7FC00000 (compare NaN
/// results by class).
class integer_rounder {
 public:
  static constexpr std::uint32_t nan = 0x7FC00000u, inf = 0x7F800000u;

  integer_rounder(const fq::format::float_format& f, const fq::format::round_options& o) noexcept
      : f_(f), o_(o) {
    using fq::format::encoding;
    const int all_ones = (1 << f.exp_bits) - 1;
    has_inf_ = f.enc == encoding::ieee;
    has_nan_ = f.enc != encoding::finite;
    min_exp_ = f.enc == encoding::e8m0 ? -f.bias : 1 - f.bias;
    const int max_exp = (f.enc == encoding::ieee || f.enc == encoding::e8m0) ? all_ones - 1 - f.bias
                                                                             : all_ones - f.bias;
    // Largest finite value: the top binade with every mantissa bit set, less one step for fn
    // (whose all-ones pattern there is NaN).
    const std::uint32_t top_mantissa =
        f.man_bits == 0 ? 0
                        : ((std::uint32_t{1} << f.man_bits) - (f.enc == encoding::fn ? 2 : 1))
                              << (23 - f.man_bits);
    max_bits_ = static_cast<std::uint32_t>(max_exp + 127) << 23 | top_mantissa;
    // 2^min_exp as float32 bits (a float32 subnormal for e8m0's 2^-127).
    min_normal_bits_ = min_exp_ >= -126 ? static_cast<std::uint32_t>(min_exp_ + 127) << 23
                                        : std::uint32_t{1} << (min_exp_ + 149);
  }

  std::uint32_t operator()(std::uint32_t x_bits) const noexcept {
    using namespace fq::format;
    const bool neg = (x_bits >> 31) != 0;
    std::uint32_t a = x_bits & 0x7FFFFFFFu;
    if (a > inf) return nan;
    if (a == inf) return overflowed(neg, true);
    if (o_.flush_input_subnormals && a < 0x00800000u) a = 0;
    if (f_.enc == encoding::e8m0 && (a == 0 || neg))
      return o_.overflow == overflow::saturate ? min_normal_bits_ : nan;
    if (a == 0) return with_sign(neg, 0);

    // a = m · 2^exp2, in the binade 2^binade <= a < 2^(binade+1).
    const std::uint32_t biased = a >> 23;
    const std::uint64_t m = biased ? ((a & 0x7FFFFFu) | 0x800000u) : a;
    const int exp2 = biased ? static_cast<int>(biased) - 150 : -149;
    const int binade = biased ? static_cast<int>(biased) - 127 : (31 - std::countl_zero(a)) - 149;
    const int e = binade < min_exp_ ? min_exp_ : binade;
    const int k = e - f_.man_bits;  // the spacing is 2^k
    const int s = k - exp2;         // a / 2^k = m / 2^s

    std::uint64_t n;  // the rounded multiple of 2^k
    if (s <= 0) {
      n = m << -s;  // exact already
    } else if (s > 40) {
      n = 0;  // far below half a step: every mode gives 0 (m < 2^24)
    } else {
      const std::uint64_t kept = m >> s, dropped = m & ((std::uint64_t{1} << s) - 1),
                          half = std::uint64_t{1} << (s - 1);
      bool up = false;
      if (o_.rounding == rounding::nearest_even)
        up = dropped > half || (dropped == half && (kept & 1) != 0);
      else if (o_.rounding == rounding::nearest_away)
        up = dropped >= half;
      n = kept + (up ? 1 : 0);
    }

    // n · 2^k as float32 bits (k >= -149 for every format, so the result is representable).
    std::uint32_t r = 0;
    if (n != 0) {
      const int top = 63 - std::countl_zero(n);  // n = 1.xxx · 2^top
      const int exponent = top + k;
      if (exponent >= -126) {
        const std::uint64_t frac = top >= 23 ? n >> (top - 23) : n << (23 - top);  // exact
        r = static_cast<std::uint32_t>(exponent + 127) << 23 |
            static_cast<std::uint32_t>(frac & 0x7FFFFFu);
      } else {
        r = static_cast<std::uint32_t>(n << (k + 149));
      }
    }
    if (f_.enc == encoding::e8m0 && r < min_normal_bits_) r = min_normal_bits_;
    if (r > max_bits_) return overflowed(neg, false);
    if (o_.flush_output_subnormals && r < min_normal_bits_) r = 0;
    return with_sign(neg, r);
  }

 private:
  std::uint32_t with_sign(bool neg, std::uint32_t r) const noexcept {
    using fq::format::encoding;
    if (f_.enc == encoding::e8m0) return r;            // unsigned
    if (f_.enc == encoding::fnuz && r == 0) return 0;  // no -0 code
    return neg ? (r | 0x80000000u) : r;
  }
  std::uint32_t overflowed(bool neg, bool input_inf) const noexcept {
    using namespace fq::format;
    const bool saturate = (o_.rounding == rounding::toward_zero && !input_inf) ||
                          o_.overflow == overflow::saturate ||
                          (o_.overflow == overflow::saturate_inf && !input_inf);
    if (saturate) return with_sign(neg, max_bits_);
    if (has_inf_) return neg ? (inf | 0x80000000u) : inf;
    return has_nan_ ? nan : with_sign(neg, max_bits_);
  }

  fq::format::float_format f_;
  fq::format::round_options o_;
  bool has_inf_, has_nan_;
  int min_exp_;
  std::uint32_t max_bits_, min_normal_bits_;
};

/// One value through integer_rounder: the float32 bits of `x_bits` rounded to `f` under `o`.
inline std::uint32_t integer_round(const fq::format::float_format& f,
                                   const fq::format::round_options& o,
                                   std::uint32_t x_bits) noexcept {
  return integer_rounder(f, o)(x_bits);
}

}  // namespace fq_test
