// SPDX-License-Identifier: MIT
// An exact accumulator of doubles: a fixed-point "superaccumulator" over the whole double range
// (after R. M. Neal, "Fast exact summation using small and large superaccumulators", 2015).
//
// The value is an integer multiple of 2^-1074 held as signed 64-bit digits of 32 bits each. An
// addition is exact, so any order of additions (threads, SIMD lanes, chunks) gives the same
// value, and rounding it once at the end gives the exact sum rounded to nearest double.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "../config.hpp"

namespace fq::stats {

/// Exact sum of finite doubles. Adding NaN or Inf is recorded and makes `value()` NaN or ±Inf.
class exact_sum {
 public:
  static constexpr int digit_bits = 32;
  static constexpr int digits = 68;  ///< 2^-1074 … 2^1102 plus headroom

  /// Adds `x` exactly.
  void add(double x) noexcept {
    const auto bits = std::bit_cast<std::uint64_t>(x);
    const auto biased = static_cast<int>((bits >> 52) & 0x7FF);
    std::uint64_t man = bits & ((std::uint64_t{1} << 52) - 1);
    if (biased == 0x7FF) {
      if (man != 0) {
        nan_ = true;
      } else if (bits >> 63) {
        neg_inf_ = true;
      } else {
        pos_inf_ = true;
      }
      return;
    }
    if (man == 0 && biased == 0) return;
    int pos = 0;  // bit position of the mantissa's lowest bit, in units of 2^-1074
    if (biased != 0) {
      man |= std::uint64_t{1} << 52;
      pos = biased - 1;
    }
    const int idx = pos >> 5, sh = pos & 31;
    // man < 2^53: the low digit gets the bits below the next digit boundary (< 2^32), the next
    // digit the rest (< 2^52), so a digit can take 2^10 additions before it needs a carry.
    const auto lo = static_cast<std::int64_t>((man << sh) & 0xFFFFFFFFu);
    const auto hi = static_cast<std::int64_t>(man >> (32 - sh));
    if (bits >> 63) {
      d_[static_cast<std::size_t>(idx)] -= lo;
      d_[static_cast<std::size_t>(idx) + 1] -= hi;
    } else {
      d_[static_cast<std::size_t>(idx)] += lo;
      d_[static_cast<std::size_t>(idx) + 1] += hi;
    }
    if (++pending_ >= carry_interval) normalize();
  }

  /// Adds the product x*y exactly (Dekker's product split, no fused multiply-add needed).
  void add_product(double x, double y) noexcept {
    if (!std::isfinite(x) || !std::isfinite(y)) {
      add(x * y);
      return;
    }
    const auto [xh, xl] = split(x);
    const auto [yh, yl] = split(y);
    // 26 × 27-bit pieces: each partial product fits 53 bits, so each is exact unless it
    // underflows; with |x*y| far above 2^-1022 * 2^53 none does (callers multiply float32
    // values and counts, so this always holds here).
    add(xh * yh);
    add(xh * yl);
    add(xl * yh);
    add(xl * yl);
  }

  /// Adds another accumulator exactly.
  void add(const exact_sum& o) noexcept {
    exact_sum other = o;  // both normalized first, so the digit sums stay far below 2^63
    other.normalize();
    normalize();
    for (std::size_t i = 0; i < digits; ++i) d_[i] += other.d_[i];
    nan_ |= o.nan_;
    pos_inf_ |= o.pos_inf_;
    neg_inf_ |= o.neg_inf_;
    normalize();
  }

  /// Negates the value exactly.
  void negate() noexcept {
    for (auto& v : d_) v = -v;
    std::swap(pos_inf_, neg_inf_);
  }

  /// -1, 0 or +1: the exact sign (NaN and infinities give the sign of the special value, 0 for
  /// NaN).
  int sign() const noexcept {
    if (nan_ || (pos_inf_ && neg_inf_)) return 0;
    if (pos_inf_) return 1;
    if (neg_inf_) return -1;
    exact_sum c = *this;
    c.normalize();
    for (std::size_t i = digits; i-- > 0;)
      if (c.d_[i] != 0) return c.d_[i] > 0 ? 1 : -1;
    return 0;
  }

  /// The exact value rounded to nearest double (ties to even); ±Inf beyond the double range.
  double value() const noexcept {
    if (nan_ || (pos_inf_ && neg_inf_)) return std::numeric_limits<double>::quiet_NaN();
    if (pos_inf_) return std::numeric_limits<double>::infinity();
    if (neg_inf_) return -std::numeric_limits<double>::infinity();
    exact_sum c = *this;
    c.normalize();
    const int s = c.sign();
    if (s == 0) return 0.0;
    if (s < 0) {
      c.negate();
      c.normalize();
    }
    const double m = c.round_magnitude();
    return s < 0 ? -m : m;
  }

 private:
  static constexpr int carry_interval = 1000;

  static std::pair<double, double> split(double x) noexcept {
    constexpr double factor = 134217729.0;  // 2^27 + 1
    const double t = factor * x;
    const double hi = t - (t - x);
    return {hi, x - hi};
  }

  // Brings every digit but the top one into [0, 2^32), carrying into the next.
  void normalize() noexcept {
    for (std::size_t i = 0; i + 1 < digits; ++i) {
      const std::int64_t carry = d_[i] >> digit_bits;  // arithmetic shift: floor division
      d_[i] -= carry * (std::int64_t{1} << digit_bits);
      d_[i + 1] += carry;
    }
    pending_ = 0;
  }

  int bit(int pos) const noexcept {
    return static_cast<int>((d_[static_cast<std::size_t>(pos >> 5)] >> (pos & 31)) & 1);
  }

  // Rounds a normalized, positive value.
  double round_magnitude() const noexcept {
    int top = digits - 1;
    while (d_[static_cast<std::size_t>(top)] == 0) --top;
    const auto top_digit = static_cast<std::uint64_t>(d_[static_cast<std::size_t>(top)]);
    if (top == digits - 1 && top_digit >= (std::uint64_t{1} << 32))
      return std::numeric_limits<double>::infinity();              // far beyond the double range
    const int lead = 32 * top + 63 - std::countl_zero(top_digit);  // highest set bit
    if (lead <= 52) {
      // Below 2^53 units: an exact subnormal or smallest-binade normal.
      std::uint64_t v = 0;
      for (int p = lead; p >= 0; --p) v = (v << 1) | static_cast<std::uint64_t>(bit(p));
      return std::ldexp(static_cast<double>(v), -1074);
    }
    const int shift = lead - 52;
    std::uint64_t man = 0;
    for (int p = lead; p >= shift; --p) man = (man << 1) | static_cast<std::uint64_t>(bit(p));
    const int round = bit(shift - 1);
    bool sticky = false;
    for (int p = shift - 2; p >= 0 && !sticky; --p) {
      if ((p & 31) == 31 && d_[static_cast<std::size_t>(p >> 5)] == 0) {
        p -= 31;  // skip a whole zero digit
        continue;
      }
      sticky = bit(p) != 0;
    }
    if (round && (sticky || (man & 1))) ++man;
    return std::ldexp(static_cast<double>(man), shift - 1074);  // man == 2^53 is fine too
  }

  std::array<std::int64_t, digits> d_{};
  int pending_ = 0;
  bool nan_ = false, pos_inf_ = false, neg_inf_ = false;
};

/// Error-free sum: s + e == a + b exactly, s = fl(a + b) (Knuth's TwoSum).
FQ_FORCE_INLINE void two_sum(double a, double b, double& s, double& e) noexcept {
  s = a + b;
  const double bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}

/// The exact quotient `sum / n` rounded to nearest double, for an exact sum and a count n ≥ 1
/// below 2^53: one division of the rounded sum, then corrected by exact residuals.
inline double exact_mean(const exact_sum& sum, std::uint64_t n) noexcept {
  const double total = sum.value();
  if (!std::isfinite(total) || n == 0)
    return n == 0 ? std::numeric_limits<double>::quiet_NaN() : total / static_cast<double>(n);
  const auto nd = static_cast<double>(n);
  double q = total / nd;
  // q is within an ulp or two of the true mean; step until |sum - q*n| <= n*ulp(q)/2 with ties
  // going to the even neighbour.
  for (int iter = 0; iter < 8; ++iter) {
    exact_sum r = sum;  // r = sum - q*n
    r.add_product(-q, nd);
    const int rs = r.sign();
    if (rs == 0) return q;
    const double toward =
        rs > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    const double next = std::nextafter(q, toward);
    // Compare |sum - q*n| with half the gap to `next`, times n: (next - q)/2 * n, exact as
    // (next - q) is a power of two and n < 2^53 (a subnormal gap halves exactly too, being even
    // in units of 2^-1074 except at the very bottom, where q is the only candidate anyway).
    exact_sum h = r;
    if (rs < 0) h.negate();  // |r|
    h.add_product(-(next - q) * 0.5, nd);
    const int hs = h.sign();
    if (hs < 0) return q;
    if (hs == 0) {
      // A tie: the even one of q and next.
      const auto qb = std::bit_cast<std::uint64_t>(q);
      return (qb & 1) == 0 ? q : next;
    }
    q = next;
  }
  return q;
}

}  // namespace fq::stats
