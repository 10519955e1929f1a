// SPDX-License-Identifier: MIT
// The tests' integer oracle (format/integer_reference.hpp) on the verified vectors of
// ../shared/docs/floatfmt.md §4, which were run on ml_dtypes and hardware: the oracle is anchored
// outside this project before it judges round_to, the encoder and the kernels.
#include <cstdint>
#include <fakequant/format/float_format.hpp>

#include "format/integer_reference.hpp"
#include "support.hpp"

using namespace fq::format;

namespace {

constexpr std::uint32_t nan_bits = 0x7FC00000u;

std::uint32_t round_bits(const float_format& f, std::uint32_t x, overflow o,
                         rounding r = rounding::nearest_even) {
  round_options opt;
  opt.overflow = o;
  opt.rounding = r;
  return fq_test::integer_round(f, opt, x);
}

}  // namespace

TEST_CASE("integer reference: floatfmt.md §4 vectors") {
  const auto ieee = overflow::ieee, sat = overflow::saturate;
  // 1-3: ties to even and the overflow of bf16's largest binade.
  CHECK(round_bits(bf16, 0x3F808000u, ieee) == 0x3F800000u);
  CHECK(round_bits(fp16, 0x3F808000u, ieee) == 0x3F808000u);
  CHECK(round_bits(bf16, 0x3F818000u, ieee) == 0x3F820000u);
  CHECK(round_bits(bf16, 0x7F7F8000u, ieee) == 0x7F800000u);
  // 4-6: NaN stays NaN.
  for (std::uint32_t x : {0x7F800001u, 0x7FA00000u, 0x7FFFFFFFu, 0xFFFFFFFFu})
    for (const auto& f : predefined_formats)
      CHECK(round_bits(f, x, f.default_overflow()) == nan_bits);
  // 7: an IEEE float32 subnormal rounds to bf16's subnormal grid (no input flush).
  CHECK(round_bits(bf16, 0x007FFFFFu, ieee) == 0x00800000u);
  // 8, 9: fp16's overflow threshold and its smallest subnormal.
  CHECK(round_bits(fp16, 0x477FF000u, ieee) == 0x7F800000u);
  CHECK(round_bits(fp16, 0x477FEFFFu, ieee) == 0x477FE000u);
  CHECK(round_bits(fp16, 0x33000000u, ieee) == 0x00000000u);
  CHECK(round_bits(fp16, 0x33000001u, ieee) == 0x33800000u);
  // 10, 11, 21: e4m3fn and e4m3fnuz at and past their maxima (448, 240).
  CHECK(round_bits(fp8_e4m3, 0x43E80000u, sat) == 0x43E00000u);
  CHECK(round_bits(fp8_e4m3, 0x43E80000u, ieee) == 0x43E00000u);
  CHECK(round_bits(fp8_e4m3, 0x43E80001u, ieee) == nan_bits);
  CHECK(round_bits(fp8_e4m3, 0x43E80001u, sat) == 0x43E00000u);
  CHECK(round_bits(fp8_e4m3fnuz, 0x43E80001u, ieee) == nan_bits);
  CHECK(round_bits(fp8_e4m3fnuz, 0x43E80001u, sat) == 0x43700000u);
  CHECK(round_bits(fp8_e4m3fnuz, 0x43780000u, ieee) == nan_bits);
  CHECK(round_bits(fp8_e4m3fnuz, 0x43780000u, sat) == 0x43700000u);
  // 12: +Inf.
  CHECK(round_bits(fp8_e4m3, 0x7F800000u, ieee) == nan_bits);
  CHECK(round_bits(fp8_e4m3, 0x7F800000u, sat) == 0x43E00000u);
  CHECK(round_bits(fp8_e5m2, 0x7F800000u, ieee) == 0x7F800000u);
  CHECK(round_bits(fp8_e5m2, 0x7F800000u, sat) == 0x47600000u);
  // 13: e5m2's overflow threshold.
  CHECK(round_bits(fp8_e5m2, 0x47700000u, ieee) == 0x7F800000u);
  CHECK(round_bits(fp8_e5m2, 0x47700000u, sat) == 0x47600000u);
  CHECK(round_bits(fp8_e5m2, 0x476FFFFFu, ieee) == 0x47600000u);
  // 14: e4m3fn's subnormals: a tie to zero, just above it, 1.5 steps to 2 steps.
  CHECK(round_bits(fp8_e4m3, 0x3A800000u, sat) == 0x00000000u);
  CHECK(round_bits(fp8_e4m3, 0x3A800001u, sat) == 0x3B000000u);
  CHECK(round_bits(fp8_e4m3, 0x3B400000u, sat) == 0x3B800000u);
  // 15: -0.
  CHECK(round_bits(fp8_e4m3, 0x80000000u, sat) == 0x80000000u);
  CHECK(round_bits(fp8_e4m3fnuz, 0x80000000u, sat) == 0x00000000u);
  CHECK(round_bits(e8m0, 0x80000000u, ieee) == nan_bits);
  CHECK(round_bits(e8m0, 0x80000000u, sat) == 0x00400000u);
  // 16, 17: rounded once from float32, not through a 16-bit intermediate.
  CHECK(round_bits(fp8_e4m3, 0x3FA88000u, sat) == 0x3FB00000u);
  CHECK(round_bits(fp8_e4m3, 0x3F880001u, sat) == 0x3F900000u);
  // 18: e2m1 midpoints (ties to even codes; 7 saturates to 6).
  const std::uint32_t in18[] = {0x3E800000u, 0x3F400000u, 0x40200000u, 0x40A00000u, 0x40E00000u};
  const std::uint32_t out18[] = {0x00000000u, 0x3F800000u, 0x40000000u, 0x40800000u, 0x40C00000u};
  for (int i = 0; i < 5; ++i) CHECK(round_bits(fp4_e2m1, in18[i], sat) == out18[i]);
  // 19: the largest fp6 values.
  CHECK(round_bits(fp6_e3m2, 0x41F00000u, sat) == 0x41E00000u);
  CHECK(round_bits(fp6_e2m3, 0x40F80000u, sat) == 0x40F00000u);
  // The other roundings: toward zero never rounds up, nearest-away takes ties up.
  CHECK(round_bits(bf16, 0x3F808000u, ieee, rounding::nearest_away) == 0x3F810000u);
  CHECK(round_bits(bf16, 0x3F80FFFFu, ieee, rounding::toward_zero) == 0x3F800000u);
  CHECK(round_bits(fp8_e5m2, 0x47700000u, ieee, rounding::toward_zero) == 0x47600000u);
}
