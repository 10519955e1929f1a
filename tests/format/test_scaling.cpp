// SPDX-License-Identifier: MIT
// Scaled fake quantization: the MX floor rule (floatfmt.md §4 vector 22, FLOOR half), blocks
// against an independent reference (the element format with its exponent range shifted by the
// scale), rows and tails, all-zero and NaN/Inf blocks; the per-tensor FP8 recipe.
#include <bit>
#include <cmath>
#include <cstdint>
#include <fakequant/format/float_format.hpp>
#include <fakequant/format/scaling.hpp>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

using namespace fq::format;

namespace {

round_options with(overflow o, rounding r = rounding::nearest_even) {
  round_options opt;
  opt.overflow = o;
  opt.rounding = r;
  return opt;
}

bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// Rounding v with scale 2^s is rounding v to the format whose exponent range is shifted by s:
// no division involved, so this is an independent reference for the block path.
float shifted_round(const float_format& f, float v, int s, const round_options& opt,
                    std::uint64_t index = 0) {
  float_format g = f;
  g.bias = f.bias - s;
  return round_to(g, v, opt, index);
}

std::vector<float> random_values(std::size_t n, int spread, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-spread, spread);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(u(rng), e(rng));
  return v;
}

}  // namespace

TEST_CASE("scaling: names") {
  CHECK(scaling_from_name("none").mode == scale_mode::none);
  CHECK(scaling_from_name("tensor").mode == scale_mode::tensor);
  CHECK(scaling_from_name("block").mode == scale_mode::block);
  CHECK(scaling_from_name("block").block == 32);
  CHECK(scaling_from_name("block:16").block == 16);
  CHECK(scaling_from_name("block:1").block == 1);
  CHECK_THROWS_WITH_AS(scaling_from_name("block:0"), doctest::Contains("unknown scaling"),
                       fq::error);
  CHECK_THROWS_AS(scaling_from_name("block:"), fq::error);
  CHECK_THROWS_AS(scaling_from_name("block:x2"), fq::error);
  CHECK_THROWS_AS(scaling_from_name("channel"), fq::error);
}

TEST_CASE("scaling: MX floor rule, vector 22 of floatfmt.md (FLOOR)") {
  // MXFP4 block with amax 7.0: scale 0x7F (2^0), and 7.0 rounds to 6.0.
  std::vector<float> in{7.0f, 1.0f, -0.3f, 2.6f, 0.0f, -5.1f, 3.0f, 0.2f};
  std::vector<float> out(in.size());
  const auto sat = with(overflow::saturate);
  CHECK(block_scale_code(fp4_e2m1, in) == 0x7F);
  const auto sum = fake_quantize_scaled(fp4_e2m1, in, out, sat, {scale_mode::block, 32});
  CHECK(sum.blocks == 1);
  CHECK(sum.min_code == 0x7F);
  CHECK(out[0] == 6.0f);
  for (std::size_t i = 0; i < in.size(); ++i) CHECK(out[i] == round_to(fp4_e2m1, in[i], sat));
  // floor(log2 amax) − emax_elem, emax 8 (E4M3), 15 (E5M2), 4 (E3M2), 2 (E2M3, E2M1).
  const float one[] = {1.0f};
  CHECK(block_scale_code(fp8_e4m3, one) == 127 - 8);
  CHECK(block_scale_code(fp8_e5m2, one) == 127 - 15);
  CHECK(block_scale_code(fp6_e3m2, one) == 127 - 4);
  CHECK(block_scale_code(fp6_e2m3, one) == 127 - 2);
  const float three[] = {-3.0f, 0.5f};
  CHECK(block_scale_code(fp4_e2m1, three) == 127 - 1);  // floor(log2 3) = 1
  const float tiny[] = {std::ldexp(1.0f, -140)};
  CHECK(block_scale_code(fp8_e4m3, tiny) == 0x00);  // clamped at 2^−127
  const float big[] = {std::numeric_limits<float>::max()};
  CHECK(block_scale_code(fp4_e2m1, big) == 127 + 125);
  const float zeros[] = {0.0f, -0.0f};
  CHECK(block_scale_code(fp8_e4m3, zeros) == 0x00);
  const float with_nan[] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  const float with_inf[] = {1.0f, -INFINITY};
  CHECK(block_scale_code(fp8_e4m3, with_nan) == 0xFF);
  CHECK(block_scale_code(fp8_e4m3, with_inf) == 0xFF);
}

TEST_CASE(
    "scaling: blocks equal the shifted-format reference, with rows, tails and special blocks") {
  for (const auto& f : {fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4_e2m1, bf16}) {
    CAPTURE(std::string(f.name));
    for (auto r : {rounding::nearest_even, rounding::toward_zero, rounding::stochastic}) {
      auto opt = with(f.default_overflow(), r);
      opt.seed = 11;
      auto elem = opt;
      elem.overflow = overflow::saturate;
      // 7 rows of 50: blocks of 32 restart on each row, so each row ends with an 18-element tail.
      const std::size_t row = 50, block = 32;
      auto in = random_values(row * 7, 20, 3);
      for (std::size_t i = 82; i < 100; ++i) in[i] = (i % 2 ? -0.0f : 0.0f);  // row 1's tail
      in[110] = std::numeric_limits<float>::quiet_NaN();                      // row 2, block 1
      in[170] = INFINITY;                                                     // row 3, block 1
      std::vector<float> out(in.size());
      const auto sum = fake_quantize_scaled(f, in, out, opt, {scale_mode::block, block}, row);
      CHECK(sum.blocks == 14);
      CHECK(sum.nan_blocks == 2);
      for (std::size_t r0 = 0; r0 < in.size(); r0 += row)
        for (std::size_t b0 = r0; b0 < r0 + row; b0 += block) {
          const std::size_t n = std::min(block, r0 + row - b0);
          const std::span<const float> blk(in.data() + b0, n);
          const auto code = block_scale_code(f, blk);
          for (std::size_t i = b0; i < b0 + n; ++i) {
            CAPTURE(i);
            if (code == 0xFF) {
              CHECK(std::isnan(out[i]));
              continue;
            }
            CHECK(same_bits(out[i], shifted_round(f, in[i], code - 127, elem, i)));
          }
        }
      CHECK(block_scale_code(f, std::span<const float>(in.data() + 82, 18)) == 0x00);
      CHECK(same_bits(out[83], -0.0f));
      // In place gives the same.
      auto again = in;
      fake_quantize_scaled(f, again, again, opt, {scale_mode::block, block}, row);
      for (std::size_t i = 0; i < in.size(); ++i)
        CHECK((same_bits(again[i], out[i]) || (std::isnan(again[i]) && std::isnan(out[i]))));
    }
  }
}

TEST_CASE("scaling: a flat span in blocks of B, and B larger than the span") {
  const auto in = random_values(70, 4, 9);
  std::vector<float> out(in.size());
  const auto sat = with(overflow::saturate);
  std::vector<std::size_t> calls;
  fake_quantize_scaled(fp8_e4m3, in, out, sat, {scale_mode::block, 32}, 0,
                       [&](std::span<const float> a, std::span<float> b, std::uint64_t first,
                           const round_options& o) {
                         calls.push_back(a.size());
                         for (std::size_t i = 0; i < a.size(); ++i)
                           b[i] = round_to(fp8_e4m3, a[i], o, first + i);
                       });
  CHECK(calls == std::vector<std::size_t>{32, 32, 6});
  for (std::size_t i = 64; i < 70; ++i) {
    const auto code = block_scale_code(fp8_e4m3, std::span<const float>(in.data() + 64, 6));
    CHECK(same_bits(out[i], shifted_round(fp8_e4m3, in[i], code - 127, sat)));
  }
  std::vector<float> out2(in.size());
  const auto sum = fake_quantize_scaled(fp8_e4m3, in, out2, sat, {scale_mode::block, 1000});
  CHECK(sum.blocks == 1);
  const auto code = block_scale_code(fp8_e4m3, in);
  for (std::size_t i = 0; i < in.size(); ++i)
    CHECK(same_bits(out2[i], shifted_round(fp8_e4m3, in[i], code - 127, sat)));
  std::vector<float> empty;
  CHECK(fake_quantize_scaled(fp8_e4m3, empty, empty, sat, {scale_mode::block, 32}).blocks == 0);
}

TEST_CASE("scaling: per tensor, amax maps to the format's max finite") {
  auto in = random_values(1000, 4, 5);  // |x| < 16
  in[123] = 37.5f;                      // the amax
  for (const auto& f : {fp8_e4m3, fp8_e5m2, fp4_e2m1}) {
    CAPTURE(std::string(f.name));
    const auto opt = with(f.default_overflow());
    std::vector<float> out(in.size());
    const auto sum = fake_quantize_scaled(f, in, out, opt, {scale_mode::tensor, 32});
    CHECK(sum.tensor_scale == 37.5f / f.max_finite());
    CHECK(out[123] == f.max_finite() * sum.tensor_scale);
    for (std::size_t i = 0; i < in.size(); ++i)
      CHECK(same_bits(out[i], round_to(f, in[i] / sum.tensor_scale, opt) * sum.tensor_scale));
  }
  // NaN and Inf do not set the scale; NaN stays NaN, Inf follows the overflow policy.
  std::vector<float> sp{2.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), -INFINITY};
  std::vector<float> out(sp.size());
  auto s = fake_quantize_scaled(fp8_e4m3, sp, out, with(overflow::saturate), {scale_mode::tensor});
  CHECK(s.tensor_scale == 2.0f / 448.0f);
  CHECK(out[0] == 448.0f * s.tensor_scale);
  CHECK(std::isnan(out[2]));
  CHECK(out[3] == -448.0f * s.tensor_scale);
  s = fake_quantize_scaled(fp8_e5m2, sp, out, with(overflow::ieee), {scale_mode::tensor});
  CHECK(out[3] == -INFINITY);
  // An all-zero tensor keeps scale 1.
  std::vector<float> z{0.0f, -0.0f};
  s = fake_quantize_scaled(fp8_e4m3, z, z, with(overflow::saturate), {scale_mode::tensor});
  CHECK(s.tensor_scale == 1.0f);
  CHECK(same_bits(z[1], -0.0f));
  // No scaling is plain rounding.
  auto in2 = in;
  fake_quantize_scaled(bf16, in2, in2, with(overflow::ieee), {});
  for (std::size_t i = 0; i < in.size(); ++i)
    CHECK(same_bits(in2[i], round_to(bf16, in[i], with(overflow::ieee))));
  std::vector<float> shorter(3);
  CHECK_THROWS_AS(fake_quantize_scaled(bf16, in, shorter, with(overflow::ieee), {}), fq::error);
}
