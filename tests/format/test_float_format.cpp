// SPDX-License-Identifier: MIT
// The scalar rounding reference: the verified test vectors of ../shared/docs/floatfmt.md §4, every
// representable value of every 8-bit-or-narrower format, midpoints and one float32 step around
// them.
#include <bit>
#include <cmath>
#include <fakequant/format/float_format.hpp>
#include <limits>
#include <vector>

#include "support.hpp"

using namespace fq::format;

namespace {

float bits(std::uint32_t b) { return std::bit_cast<float>(b); }

round_options with(overflow o, rounding r = rounding::nearest_even) {
  round_options opt;
  opt.overflow = o;
  opt.rounding = r;
  return opt;
}

// Every finite non-negative value of `f`, ascending.
std::vector<float> values_of(const float_format& f) {
  std::vector<float> v;
  const int ne = 1 << f.exp_bits, nm = 1 << f.man_bits;
  for (int e = 0; e < ne; ++e)
    for (int m = 0; m < nm; ++m) {
      if (f.enc == encoding::ieee && e == ne - 1) continue;               // Inf, NaN
      if (f.enc == encoding::fn && e == ne - 1 && m == nm - 1) continue;  // NaN
      if (f.enc == encoding::e8m0) {
        if (e == ne - 1) continue;  // NaN
        v.push_back(std::ldexp(1.0f, e - f.bias));
        continue;
      }
      v.push_back(
          e == 0 ? std::ldexp(static_cast<float>(m), 1 - f.bias - f.man_bits)
                 : std::ldexp(1.0f + static_cast<float>(m) / static_cast<float>(nm), e - f.bias));
    }
  return v;
}

}  // namespace

TEST_CASE("format: floatfmt.md test vectors") {
  const auto ieee = with(overflow::ieee), sat = with(overflow::saturate);
  CHECK(round_to(bf16, bits(0x3F808000), ieee) == 1.0f);              // 1
  CHECK(round_to(fp16, bits(0x3F808000), ieee) == bits(0x3F808000));  // 1: exact in f16
  CHECK(round_to(bf16, bits(0x3F818000), ieee) == bits(0x3F820000));  // 2
  CHECK(std::isinf(round_to(bf16, bits(0x7F7F8000), ieee)));          // 3
  CHECK(std::isnan(round_to(bf16, bits(0x7F800001), ieee)));          // 4
  CHECK(std::isnan(round_to(fp8_e4m3, bits(0x7F800001), sat)));
  CHECK(std::isnan(round_to(bf16, bits(0xFFFFFFFF), ieee)));          // 6: no bias-add wrap
  CHECK(round_to(bf16, bits(0x007FFFFF), ieee) == bits(0x00800000));  // 7 (IEEE)
  auto flush = ieee;
  flush.flush_input_subnormals = true;
  CHECK(round_to(bf16, bits(0x007FFFFF), flush) == 0.0f);     // 7 (hardware)
  CHECK(std::isinf(round_to(fp16, bits(0x477FF000), ieee)));  // 8
  CHECK(round_to(fp16, bits(0x477FEFFF), ieee) == 65504.0f);
  CHECK(round_to(fp16, bits(0x33000000), ieee) == 0.0f);  // 9
  CHECK(round_to(fp16, bits(0x33000001), ieee) == std::ldexp(1.0f, -24));
  CHECK(round_to(fp8_e4m3, 464.0f, sat) == 448.0f);  // 10
  CHECK(round_to(fp8_e4m3, 464.0f, ieee) == 448.0f);
  CHECK(std::isnan(round_to(fp8_e4m3, bits(0x43E80001), ieee)));  // 11
  CHECK(round_to(fp8_e4m3, bits(0x43E80001), sat) == 448.0f);
  CHECK(std::isnan(round_to(fp8_e4m3fnuz, bits(0x43E80001), ieee)));
  CHECK(round_to(fp8_e4m3fnuz, bits(0x43E80001), sat) == 240.0f);
  CHECK(std::isnan(round_to(fp8_e4m3, INFINITY, ieee)));  // 12
  CHECK(round_to(fp8_e4m3, INFINITY, sat) == 448.0f);
  CHECK(std::isnan(round_to(fp8_e4m3, INFINITY, with(overflow::saturate_inf))));
  CHECK(std::isinf(round_to(fp8_e5m2, INFINITY, ieee)));
  CHECK(round_to(fp8_e5m2, INFINITY, sat) == 57344.0f);
  CHECK(std::isinf(round_to(fp8_e5m2, 61440.0f, ieee)));  // 13
  CHECK(round_to(fp8_e5m2, 61440.0f, sat) == 57344.0f);
  CHECK(round_to(fp8_e5m2, bits(0x476FFFFF), ieee) == 57344.0f);
  CHECK(round_to(fp8_e4m3, bits(0x3A800000), sat) == 0.0f);  // 14
  CHECK(round_to(fp8_e4m3, bits(0x3A800001), sat) == std::ldexp(1.0f, -9));
  CHECK(round_to(fp8_e4m3, bits(0x3B400000), sat) == std::ldexp(1.0f, -8));
  CHECK(std::signbit(round_to(fp8_e4m3, -0.0f, sat)));  // 15
  CHECK_FALSE(std::signbit(round_to(fp8_e4m3fnuz, -0.0f, sat)));
  CHECK_FALSE(std::signbit(round_to(fp8_e4m3fnuz, -1e-6f, sat)));  // underflow: +0
  CHECK(round_to(e8m0, -0.0f, sat) == std::ldexp(1.0f, -127));
  CHECK(std::isnan(round_to(e8m0, -0.0f, ieee)));
  CHECK(round_to(fp8_e4m3, bits(0x3FA88000), sat) == 1.375f);  // 16: no double rounding
  CHECK(round_to(fp8_e4m3, bits(0x3F880001), sat) == 1.125f);  // 17
  CHECK(round_to(fp4_e2m1, 0.25f, sat) == 0.0f);               // 18
  CHECK(round_to(fp4_e2m1, 0.75f, sat) == 1.0f);
  CHECK(round_to(fp4_e2m1, 2.5f, sat) == 2.0f);
  CHECK(round_to(fp4_e2m1, 5.0f, sat) == 4.0f);
  CHECK(round_to(fp4_e2m1, 7.0f, sat) == 6.0f);
  CHECK(round_to(fp6_e3m2, 30.0f, sat) == 28.0f);  // 19
  CHECK(round_to(fp6_e2m3, 7.75f, sat) == 7.5f);
  CHECK(round_to(e8m0, 3.0f, sat) == 4.0f);  // 20 (ml_dtypes rule)
  CHECK(round_to(e8m0, 0.75f, sat) == 1.0f);
  CHECK(round_to(e8m0, 1.5f, sat) == 2.0f);
  CHECK(std::isnan(round_to(fp8_e4m3fnuz, 248.0f, ieee)));  // 21
  CHECK(round_to(fp8_e4m3fnuz, 248.0f, sat) == 240.0f);
}

TEST_CASE("format: constants, names and option checks") {
  CHECK(fp8_e4m3.max_finite() == 448.0f);
  CHECK(fp8_e5m2.max_finite() == 57344.0f);
  CHECK(fp8_e4m3fnuz.max_finite() == 240.0f);
  CHECK(fp8_e5m2fnuz.max_finite() == 57344.0f);
  CHECK(fp6_e3m2.max_finite() == 28.0f);
  CHECK(fp6_e2m3.max_finite() == 7.5f);
  CHECK(fp4_e2m1.max_finite() == 6.0f);
  CHECK(fp16.max_finite() == 65504.0f);
  CHECK(bf16.max_finite() == bits(0x7F7F0000));
  CHECK(e8m0.max_finite() == std::ldexp(1.0f, 127));
  const auto e4m3 = format_from_name("ieee_e4m3");
  CHECK(e4m3.max_finite() == 240.0f);
  CHECK(e4m3.has_inf());
  CHECK(format_from_name("ieee_e8m23").max_finite() == std::numeric_limits<float>::max());
  CHECK(format_from_name("fp8_e4m3").name == "fp8_e4m3");
  CHECK_THROWS_WITH_AS(format_from_name("fp7"), doctest::Contains("unknown format 'fp7'"),
                       fq::error);
  CHECK_THROWS_AS(format_from_name("ieee_e9m2"), fq::error);
  CHECK_THROWS_AS(check_options(fp4_e2m1, with(overflow::ieee)), fq::error);
  CHECK_NOTHROW(check_options(fp4_e2m1, with(overflow::saturate)));
}

TEST_CASE(
    "format: every value round-trips, and midpoints and one float32 step around them round as "
    "specified") {
  for (const auto& f : predefined_formats) {
    if (f.exp_bits + f.man_bits > 8) continue;  // the 8-bit and narrower formats: every code
    CAPTURE(std::string(f.name));
    const auto v = values_of(f);
    const auto sat = with(overflow::saturate);
    for (float x : v) {
      CHECK(round_to(f, x, sat) == x);
      if (f.enc != encoding::e8m0 && x != 0.0f) CHECK(round_to(f, -x, sat) == -x);
    }
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      const float lo = v[i], hi = v[i + 1], mid = (lo + hi) / 2;  // exact: one more bit
      const float below = std::nextafter(mid, 0.0f), above = std::nextafter(mid, INFINITY);
      CHECK(round_to(f, below, sat) == lo);
      CHECK(round_to(f, above, sat) == hi);
      // The tie goes to the even code; for e8m0 (no mantissa) the larger power, as ml_dtypes.
      const float even = f.man_bits == 0 ? hi : (i % 2 == 0 ? lo : hi);
      if (f.enc != encoding::e8m0 || lo > 0) CHECK(round_to(f, mid, sat) == even);
      CHECK(round_to(f, mid, with(overflow::saturate, rounding::toward_zero)) == lo);
      CHECK(round_to(f, mid, with(overflow::saturate, rounding::nearest_away)) == hi);
      CHECK(round_to(f, above, with(overflow::saturate, rounding::toward_zero)) == lo);
    }
  }
}

TEST_CASE("format: stochastic rounding is unbiased and reproducible") {
  auto opt = with(overflow::saturate, rounding::stochastic);
  opt.seed = 42;
  const float x = 1.0f + 1.0f / 3.0f;  // between bf16 neighbours, not a midpoint
  double sum = 0, sum2 = 0;
  const std::size_t n = 10'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(round_to(bf16, x, opt, i)) - x;
    sum += e;
    sum2 += e * e;
  }
  const double mean = sum / n, se = std::sqrt((sum2 / n - mean * mean) / (n - 1));
  CHECK(std::abs(mean) < 3 * se);
  CHECK(round_to(bf16, x, opt, 12345) == round_to(bf16, x, opt, 12345));
}
