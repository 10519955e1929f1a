// SPDX-License-Identifier: MIT
// Codes: every code of every predefined format (and some ieee_eXmY) decodes to a value that
// encodes back to it and that fake-quantizing keeps; the encoder and round_to equal the tests'
// integer reference on a strided float32 sweep; the verified vectors of floatfmt.md §4 as codes.
#include <bit>
#include <cmath>
#include <cstdint>
#include <fakequant/format/codes.hpp>
#include <fakequant/format/float_format.hpp>
#include <fakequant/gguf/blocks.hpp>
#include <limits>
#include <string>
#include <vector>

#include "format/integer_reference.hpp"
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

bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// Formats whose every code is checked: the predefined ones and IEEE-like ones by name.
std::vector<float_format> formats_under_test() {
  std::vector<float_format> v(std::begin(predefined_formats), std::end(predefined_formats));
  for (const char* n : {"ieee_e4m3", "ieee_e3m4", "ieee_e2m0", "ieee_e5m0", "ieee_e6m9"})
    v.push_back(format_from_name(n));
  return v;
}

const rounding deterministic[] = {rounding::nearest_even, rounding::toward_zero,
                                  rounding::nearest_away};
const overflow policies[] = {overflow::saturate, overflow::saturate_inf, overflow::ieee};

// NaN-class equality of two codes: both NaN codes, or the same code.
bool same_code(const float_format& f, std::uint32_t a, std::uint32_t b) {
  if (std::isnan(decode(f, a)) || std::isnan(decode(f, b)))
    return std::isnan(decode(f, a)) && std::isnan(decode(f, b));
  return a == b;
}

}  // namespace

TEST_CASE("codes: widths, NaN codes and the documented NaN code of formats without one") {
  CHECK(code_bits(bf16) == 16);
  CHECK(code_bytes(bf16) == 2);
  CHECK(code_bits(fp8_e4m3) == 8);
  CHECK(code_bits(fp6_e2m3) == 6);
  CHECK(code_bits(fp4_e2m1) == 4);
  CHECK(code_bits(e8m0) == 8);
  CHECK(code_bytes(format_from_name("ieee_e8m23")) == 4);
  CHECK(code_bytes(format_from_name("ieee_e8m8")) == 4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto sat = with(overflow::saturate), ieee = with(overflow::ieee);
  CHECK(encode(fp8_e4m3fnuz, nan, sat) == 0x80);
  CHECK(encode(fp8_e5m2fnuz, -nan, sat) == 0x80);
  CHECK(encode(fp8_e4m3, nan, sat) == 0x7F);
  CHECK(encode(fp8_e4m3, -nan, sat) == 0xFF);
  CHECK(encode(e8m0, nan, sat) == 0xFF);
  CHECK(encode(e8m0, -nan, sat) == 0xFF);
  CHECK(encode(bf16, -nan, ieee) == 0xFFC0);
  // No NaN code: the −0 code, which decodes to −0.
  CHECK_FALSE(has_nan_code(fp4_e2m1));
  CHECK_FALSE(has_nan_code(format_from_name("ieee_e5m0")));
  CHECK(has_nan_code(fp8_e4m3fnuz));
  CHECK(encode(fp4_e2m1, nan, sat) == 0x8);
  CHECK(encode(fp4_e2m1, -nan, sat) == 0x8);
  CHECK(encode(fp6_e3m2, nan, sat) == 0x20);
  CHECK(encode(fp6_e2m3, nan, sat) == 0x20);
  CHECK(encode(format_from_name("ieee_e5m0"), nan, ieee) == 0x20);
  CHECK(decode(fp4_e2m1, 0x8) == 0.0f);
  CHECK(std::signbit(decode(fp4_e2m1, 0x8)));
  // Bits above the code are ignored.
  CHECK(decode(fp4_e2m1, 0xF7) == 6.0f);
  CHECK(decode(fp4_e2m1, 0xF) == -6.0f);
}

TEST_CASE("codes: the floatfmt.md test vectors as codes") {
  const auto ieee = with(overflow::ieee), sat = with(overflow::saturate);
  CHECK(encode(bf16, bits(0x3F808000), ieee) == 0x3F80);  // 1
  CHECK(encode(fp16, bits(0x3F808000), ieee) == 0x3C04);
  CHECK(encode(bf16, bits(0x3F818000), ieee) == 0x3F82);  // 2
  CHECK(encode(bf16, bits(0x7F7F8000), ieee) == 0x7F80);  // 3
  CHECK(encode(bf16, bits(0x7F800001), ieee) == 0x7FC0);  // 4
  CHECK(encode(fp16, bits(0x7F800001), ieee) == 0x7E00);
  CHECK(encode(fp8_e4m3, bits(0x7F800001), sat) == 0x7F);
  CHECK(encode(fp8_e5m2, bits(0x7F800001), ieee) == 0x7E);
  CHECK(std::isnan(decode(bf16, encode(bf16, bits(0xFFFFFFFF), ieee))));  // 6
  CHECK(encode(bf16, bits(0x007FFFFF), ieee) == 0x0080);                  // 7
  auto flush = ieee;
  flush.flush_input_subnormals = true;
  CHECK(encode(bf16, bits(0x007FFFFF), flush) == 0x0000);
  CHECK(encode(fp16, bits(0x477FF000), ieee) == 0x7C00);  // 8
  CHECK(encode(fp16, bits(0x477FEFFF), ieee) == 0x7BFF);
  CHECK(encode(fp16, bits(0x33000000), ieee) == 0x0000);  // 9
  CHECK(encode(fp16, bits(0x33000001), ieee) == 0x0001);
  CHECK(encode(fp8_e4m3, 464.0f, sat) == 0x7E);  // 10
  CHECK(encode(fp8_e4m3, 464.0f, ieee) == 0x7E);
  CHECK(encode(fp8_e4m3, bits(0x43E80001), ieee) == 0x7F);  // 11
  CHECK(encode(fp8_e4m3, bits(0x43E80001), sat) == 0x7E);
  CHECK(encode(fp8_e4m3fnuz, bits(0x43E80001), ieee) == 0x80);
  CHECK(encode(fp8_e4m3fnuz, bits(0x43E80001), sat) == 0x7F);
  CHECK(encode(fp8_e4m3, INFINITY, ieee) == 0x7F);  // 12
  CHECK(encode(fp8_e4m3, INFINITY, sat) == 0x7E);
  CHECK(encode(fp8_e4m3, INFINITY, with(overflow::saturate_inf)) == 0x7F);
  CHECK(encode(fp8_e5m2, INFINITY, ieee) == 0x7C);
  CHECK(encode(fp8_e5m2, INFINITY, sat) == 0x7B);
  CHECK(encode(fp8_e5m2, -INFINITY, with(overflow::saturate_inf)) == 0xFC);
  CHECK(encode(fp8_e5m2, 61440.0f, ieee) == 0x7C);  // 13
  CHECK(encode(fp8_e5m2, 61440.0f, sat) == 0x7B);
  CHECK(encode(fp8_e5m2, bits(0x476FFFFF), ieee) == 0x7B);
  CHECK(encode(fp8_e4m3, bits(0x3A800000), sat) == 0x00);  // 14
  CHECK(encode(fp8_e4m3, bits(0x3A800001), sat) == 0x01);
  CHECK(encode(fp8_e4m3, bits(0x3B400000), sat) == 0x02);
  CHECK(encode(fp8_e4m3, -0.0f, sat) == 0x80);  // 15
  CHECK(encode(fp8_e4m3fnuz, -0.0f, sat) == 0x00);
  CHECK(encode(fp8_e4m3fnuz, -1e-6f, sat) == 0x00);
  CHECK(encode(e8m0, -0.0f, ieee) == 0xFF);
  CHECK(encode(e8m0, -0.0f, sat) == 0x00);
  CHECK(encode(fp8_e4m3, bits(0x3FA88000), sat) == 0x3B);  // 16
  CHECK(encode(fp8_e4m3, bits(0x3F880001), sat) == 0x39);  // 17
  const std::uint32_t e2m1_in[] = {0x3E800000, 0x3F400000, 0x40200000, 0x40A00000, 0x40E00000};
  const std::uint32_t e2m1_want[] = {0, 2, 4, 6, 7};  // 18
  for (int i = 0; i < 5; ++i) CHECK(encode(fp4_e2m1, bits(e2m1_in[i]), sat) == e2m1_want[i]);
  CHECK(encode(fp6_e3m2, bits(0x41F00000), sat) == 0x1F);  // 19
  CHECK(encode(fp6_e2m3, bits(0x40F80000), sat) == 0x1F);
  CHECK(encode(e8m0, 3.0f, sat) == 0x81);  // 20 (ml_dtypes' rule)
  CHECK(encode(e8m0, 0.75f, sat) == 0x7F);
  CHECK(encode(e8m0, 1.5f, sat) == 0x80);
  CHECK(encode(fp8_e4m3fnuz, 248.0f, ieee) == 0x80);  // 21
  CHECK(encode(fp8_e4m3fnuz, 248.0f, sat) == 0x7F);
}

TEST_CASE("codes: every code decodes to a value that encodes back to it and rounds to itself") {
  // Failures are counted and the first one reported, so the loops stay cheap under qemu.
  std::size_t checked = 0;
  for (const auto& f : formats_under_test()) {
    CAPTURE(std::string(f.name));
    const std::uint32_t n = std::uint32_t{1} << code_bits(f);
    std::size_t nan_codes = 0, bad = 0;
    std::uint32_t first_bad = 0;
    auto expect = [&](bool ok, std::uint32_t c) {
      if (!ok && bad++ == 0) first_bad = c;
    };
    float prev = -1.0f;  // positive codes ascend in value
    for (std::uint32_t c = 0; c < n; ++c) {
      const float v = decode(f, c);
      if (std::isnan(v)) {
        ++nan_codes;
        expect(std::isnan(decode(f, encode(f, v, with(overflow::ieee)))), c);
        continue;
      }
      const bool positive = f.enc == encoding::e8m0 || c < n / 2;
      if (positive && !std::isinf(v)) {
        expect(v > prev, c);
        prev = v;
      }
      for (auto r : deterministic)
        for (auto o : policies) {
          if (o != overflow::saturate && f.enc == encoding::finite) continue;
          if (std::isinf(v) && o != overflow::ieee) continue;  // Inf saturates under those
          const auto opt = with(o, r);
          expect(encode(f, v, opt) == c, c);
          expect(same_bits(round_to(f, v, opt), v), c);
        }
      ++checked;
    }
    CHECK_MESSAGE(bad == 0, "first failing code: " << first_bad);
    // NaN codes: bf16 2·127, fp16 2·1023, e5m2 2·3, e4m3fn 2, FNUZ and e8m0 one, FP6/FP4 none.
    const std::size_t e_ones_m = f.man_bits == 0 ? 0 : (std::size_t{1} << f.man_bits) - 1;
    const std::size_t want_nan = f.enc == encoding::ieee                              ? 2 * e_ones_m
                                 : f.enc == encoding::fn                              ? 2
                                 : f.enc == encoding::fnuz || f.enc == encoding::e8m0 ? 1
                                                                                      : 0;
    CHECK(nan_codes == want_nan);
  }
  MESSAGE("non-NaN codes round-tripped: " << checked);
  CHECK(checked > 65536 + 65536);
}

TEST_CASE("codes: decode equals independent decoders and the formats' known constants") {
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const auto h = static_cast<std::uint16_t>(c);
    const float want16 = fq::gguf::detail::half_to_float(h),
                want_b = fq::gguf::detail::bf16_to_float(h);
    if (std::isnan(want16)) {
      CHECK(std::isnan(decode(fp16, c)));
    } else {
      REQUIRE(same_bits(decode(fp16, c), want16));
    }
    if (std::isnan(want_b)) {
      CHECK(std::isnan(decode(bf16, c)));
    } else {
      REQUIRE(same_bits(decode(bf16, c), want_b));
    }
  }
  CHECK(decode(fp8_e4m3, 0x7E) == 448.0f);
  CHECK(decode(fp8_e4m3, 0x01) == std::ldexp(1.0f, -9));
  CHECK(decode(fp8_e5m2, 0x7B) == 57344.0f);
  CHECK(std::isinf(decode(fp8_e5m2, 0x7C)));
  CHECK(decode(fp8_e4m3fnuz, 0x7F) == 240.0f);
  CHECK(decode(fp8_e4m3fnuz, 0x01) == std::ldexp(1.0f, -10));
  CHECK(decode(fp8_e5m2fnuz, 0x7F) == 57344.0f);
  CHECK(decode(fp8_e5m2fnuz, 0x01) == std::ldexp(1.0f, -17));
  CHECK(decode(fp6_e3m2, 0x1F) == 28.0f);
  CHECK(decode(fp6_e2m3, 0x1F) == 7.5f);
  CHECK(decode(fp6_e2m3, 0x21) == -0.125f);
  CHECK(decode(fp4_e2m1, 0x1) == 0.5f);
  CHECK(decode(e8m0, 0x00) == std::ldexp(1.0f, -127));
  CHECK(decode(e8m0, 0x7F) == 1.0f);
  CHECK(decode(e8m0, 0xFE) == std::ldexp(1.0f, 127));
  CHECK(decode(format_from_name("ieee_e4m3"), 0x77) == 240.0f);
  CHECK(decode(format_from_name("ieee_e8m23"), 0x3F800000) == 1.0f);
}

TEST_CASE("codes: round_to and the encoder equal the integer reference on a strided sweep") {
  // The oracle is the tests' own integer rounding (format/integer_reference.hpp), independent of
  // both: every format here has at most 16 bits.
  // Every float32 exponent with 2^16 mantissa patterns spread over it, and codes' midpoints ±1
  // step for the 8-bit formats, under every deterministic rounding, overflow policy and flush.
  std::vector<float> xs;
  for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 65521) {
    xs.push_back(bits(static_cast<std::uint32_t>(u)));
  }
  std::size_t compared = 0;
  for (const auto& f : formats_under_test()) {
    CAPTURE(std::string(f.name));
    std::vector<float> local = xs;
    if (code_bits(f) <= 8) {
      for (std::uint32_t c = 0; c + 1 < (std::uint32_t{1} << code_bits(f)); ++c) {
        const float lo = decode(f, c), hi = decode(f, c + 1);
        if (!std::isfinite(lo) || !std::isfinite(hi)) continue;
        const float mid = lo / 2 + hi / 2;
        local.insert(local.end(),
                     {mid, std::nextafter(mid, -INFINITY), std::nextafter(mid, INFINITY), -mid});
      }
    }
    for (auto r : deterministic)
      for (auto o : policies)
        for (int fl = 0; fl < (r == rounding::nearest_even ? 4 : 1); ++fl) {
          auto opt = with(o, r);
          opt.flush_input_subnormals = (fl & 1) != 0;
          opt.flush_output_subnormals = (fl & 2) != 0;
          CAPTURE(static_cast<int>(r));
          CAPTURE(static_cast<int>(o));
          CAPTURE(fl);
          std::size_t bad = 0;
          std::uint32_t first_bad = 0;
          for (float x : local) {
            const std::uint32_t want =
                fq_test::integer_round(f, opt, std::bit_cast<std::uint32_t>(x));
            const std::uint32_t c = encode(f, x, opt);
            const float v = round_to(f, x, opt);
            bool ok;
            if (want == 0x7FC00000u) {
              // Formats without a NaN code give the documented stand-in.
              ok = std::isnan(v) && (has_nan_code(f) ? std::isnan(decode(f, c)) : c == nan_code(f));
            } else {
              // Encoding the rounded value again is the same code: rounding is idempotent.
              ok = std::bit_cast<std::uint32_t>(v) == want && same_bits(decode(f, c), v) &&
                   same_code(f, encode(f, v, opt), c);
            }
            if (!ok && bad++ == 0) first_bad = std::bit_cast<std::uint32_t>(x);
            ++compared;
          }
          CHECK_MESSAGE(bad == 0, "first failing input bits: " << first_bad);
        }
  }
  MESSAGE("inputs compared with the integer reference: " << compared);
}

TEST_CASE("codes: spans of any length, stochastic indices and misuse") {
  std::vector<float> in(77);
  for (std::size_t i = 0; i < in.size(); ++i)
    in[i] = std::ldexp(static_cast<float>(i) - 38.3f, static_cast<int>(i % 13) - 6);
  auto opt = with(overflow::saturate, rounding::stochastic);
  opt.seed = 7;
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 31u, 77u}) {
    CAPTURE(n);
    std::vector<std::uint8_t> codes(n);
    std::vector<float> back(n);
    encode(fp8_e4m3, std::span<const float>(in.data(), n), std::span<std::uint8_t>(codes), opt,
           100);
    decode(fp8_e4m3, std::span<const std::uint8_t>(codes), std::span<float>(back));
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(codes[i] == encode(fp8_e4m3, in[i], opt, 100 + i));
      CHECK(same_bits(back[i], round_to(fp8_e4m3, in[i], opt, 100 + i)));
    }
  }
  std::vector<std::uint16_t> wide(77);
  encode(bf16, std::span<const float>(in), std::span<std::uint16_t>(wide), with(overflow::ieee));
  CHECK(wide[40] == encode(bf16, in[40], with(overflow::ieee)));
  std::vector<std::uint8_t> narrow(77);
  CHECK_THROWS_WITH_AS(
      encode(bf16, std::span<const float>(in), std::span<std::uint8_t>(narrow), opt),
      doctest::Contains("bf16 codes need 16 bits"), fq::error);
  CHECK_THROWS_WITH_AS(
      encode(fp8_e4m3, std::span<const float>(in).first(5), std::span<std::uint8_t>(narrow), opt),
      doctest::Contains("differ in length"), fq::error);
}
