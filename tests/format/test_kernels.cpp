// SPDX-License-Identifier: MIT
// The SIMD format kernels against the scalar reference round_to, bit for bit, on every
// architecture this CPU runs (each forced): strided sweeps for every combination, tails, in place
// and out of place, stochastic rounding across architectures and thread counts, dispatch.
// The sweeps over all 2^32 inputs are in format_sweep.cpp (ctest label `exhaustive`).
#include <cstdlib>
#include <cstring>
#include <fakequant/format/kernels.hpp>
#include <string>
#include <vector>

#include "format/kernel_check.hpp"
#include "support.hpp"

using namespace fq::format;

namespace {

// Runs `k` on `in` and counts the results that differ from round_to (reporting the first few).
std::size_t mismatches(const kernel_table& k, const fq_test::combo& c, const std::vector<float>& in,
                       const std::vector<float>& want, std::uint64_t first_index = 0) {
  std::vector<float> got(in.size());
  fake_quantize(k, c.format, c.options, in, got, first_index);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (!fq_test::same_result(got[i], want[i])) {
      if (++bad <= 3)
        MESSAGE(k.name << " " << c.name() << ": x bits " << std::hex
                       << std::bit_cast<std::uint32_t>(in[i]) << " gave "
                       << std::bit_cast<std::uint32_t>(got[i]) << ", reference "
                       << std::bit_cast<std::uint32_t>(want[i]));
    }
  return bad;
}

void strided_sweep(const float_format& f) {
  const auto kernels = fq_test::cpu_kernels();
  REQUIRE_FALSE(kernels.empty());
  const auto bits = fq_test::strided_inputs(f);
  std::vector<float> in(bits.size()), want(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) in[i] = std::bit_cast<float>(bits[i]);
  auto combos = fq_test::combos_of(f);
  // Flushing, with the format's default policy and each deterministic rounding.
  for (auto r : {rounding::nearest_even, rounding::toward_zero, rounding::nearest_away}) {
    round_options o;
    o.rounding = r;
    o.overflow = f.default_overflow();
    o.flush_input_subnormals = true;
    combos.push_back({f, o});
    o.flush_output_subnormals = true;
    combos.push_back({f, o});
    o.flush_input_subnormals = false;
    combos.push_back({f, o});
  }
  for (const auto& c : combos) {
    CAPTURE(c.name());
    for (std::size_t i = 0; i < in.size(); ++i) want[i] = round_to(f, in[i], c.options);
    for (const auto& k : kernels) {
      CAPTURE(std::string(k.name));
      CHECK(mismatches(k, c, in, want) == 0);
    }
  }
}

}  // namespace

TEST_CASE("format kernels: strided sweep bf16") { strided_sweep(bf16); }
TEST_CASE("format kernels: strided sweep fp16") { strided_sweep(fp16); }
TEST_CASE("format kernels: strided sweep fp8_e4m3") { strided_sweep(fp8_e4m3); }
TEST_CASE("format kernels: strided sweep fp8_e5m2") { strided_sweep(fp8_e5m2); }
TEST_CASE("format kernels: strided sweep fp8_e4m3fnuz") { strided_sweep(fp8_e4m3fnuz); }
TEST_CASE("format kernels: strided sweep fp8_e5m2fnuz") { strided_sweep(fp8_e5m2fnuz); }
TEST_CASE("format kernels: strided sweep fp6_e3m2") { strided_sweep(fp6_e3m2); }
TEST_CASE("format kernels: strided sweep fp6_e2m3") { strided_sweep(fp6_e2m3); }
TEST_CASE("format kernels: strided sweep fp4_e2m1") { strided_sweep(fp4_e2m1); }
TEST_CASE("format kernels: strided sweep e8m0") { strided_sweep(e8m0); }
TEST_CASE("format kernels: strided sweep of run-time ieee_eXmY formats") {
  // The extremes of the name space: no mantissa, all of float32's, the widest and narrowest
  // exponents, and ieee_e4m3 (not fp8_e4m3).
  for (const char* n : {"ieee_e8m0", "ieee_e8m23", "ieee_e2m0", "ieee_e2m23", "ieee_e4m3",
                        "ieee_e8m10", "ieee_e5m22", "ieee_e3m1"})
    strided_sweep(format_from_name(n));
}

TEST_CASE("format kernels: every length and offset, in place and out of place") {
  const auto kernels = fq_test::cpu_kernels();
  std::vector<float> src(300);
  for (std::size_t i = 0; i < src.size(); ++i)
    src[i] = std::ldexp(static_cast<float>(i * 37 % 101) - 50.0f, static_cast<int>(i % 13) - 8);
  for (const auto& f : predefined_formats)
    for (auto r : {rounding::nearest_even, rounding::toward_zero, rounding::stochastic}) {
      round_options o;
      o.rounding = r;
      o.overflow = f.default_overflow();
      o.seed = 7;
      for (const auto& k : kernels)
        for (std::size_t off : {0u, 1u, 3u})
          for (std::size_t n = 0; n <= 70; ++n) {
            std::vector<float> out(n + 2, 123.0f),
                inplace(src.begin() + off, src.begin() + off + n);
            fake_quantize(k, f, o, std::span(src).subspan(off, n), std::span(out).subspan(1, n),
                          off);
            fake_quantize(k, f, o, inplace, inplace, off);
            bool ok = out[0] == 123.0f && out[n + 1] == 123.0f;
            for (std::size_t i = 0; i < n; ++i) {
              const float want = round_to(f, src[off + i], o, off + i);
              ok = ok && fq_test::same_result(out[1 + i], want) &&
                   fq_test::same_result(inplace[i], want);
            }
            CAPTURE(std::string(f.name));
            CAPTURE(std::string(k.name));
            CAPTURE(n);
            CHECK(ok);
          }
    }
}

TEST_CASE("format kernels: stochastic rounding equals the reference on every architecture") {
  // Identical across widths (architectures), thread counts and the offset a piece starts at.
  const auto kernels = fq_test::cpu_kernels();
  std::vector<float> in(1'000'003);
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9e3779b9u;
    h ^= h >> 15;
    in[i] = std::bit_cast<float>(h);
  }
  fq::thread_pool pool2(2), pool3(3);
  for (const auto& f : predefined_formats) {
    round_options o;
    o.rounding = rounding::stochastic;
    o.overflow = f.default_overflow();
    o.seed = 0x5eed;
    o.flush_output_subnormals = f.enc == encoding::fn;  // one option on, for coverage
    std::vector<float> want(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) want[i] = round_to(f, in[i], o, 1000 + i);
    for (const auto& k : kernels) {
      CAPTURE(std::string(f.name));
      CAPTURE(std::string(k.name));
      for (auto* pool : {static_cast<fq::thread_pool*>(nullptr), &pool2, &pool3}) {
        std::vector<float> got(in.size());
        fake_quantize(k, f, o, in, got, 1000, pool);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < in.size(); ++i) bad += !fq_test::same_result(got[i], want[i]);
        CHECK(bad == 0);
      }
    }
  }
}

TEST_CASE("format kernels: several threads give the deterministic roundings' results") {
  const auto kernels = fq_test::cpu_kernels();
  std::vector<float> in(3'000'001);
  for (std::size_t i = 0; i < in.size(); ++i)
    in[i] = std::bit_cast<float>(static_cast<std::uint32_t>(i * 1431u));
  fq::thread_pool pool(3);
  round_options o;
  o.overflow = fp8_e4m3.default_overflow();
  std::vector<float> one(in.size()), many(in.size());
  fake_quantize(kernels.back(), fp8_e4m3, o, in, one);
  fake_quantize(kernels.front(), fp8_e4m3, o, in, many, 0, &pool);
  CHECK(std::memcmp(one.data(), many.data(), one.size() * 4) == 0);
}

TEST_CASE("format kernels: dispatch names, forcing and errors") {
  CHECK_THROWS_WITH_AS(kernels_for("avx9"), doctest::Contains("unknown kernel architecture"),
                       fq::error);
  for (const auto& k : fq_test::cpu_kernels()) {
    ::setenv("FQ_FORCE_ARCH",
             k.name == std::string("avx512bw") ? "avx512"
             : k.name == std::string("avx2")   ? "avx2"
             : k.name == std::string("sse2")   ? "sse2"
                                               : "default",
             1);
    CHECK(std::string(best_kernels().name) == k.name);
  }
  ::unsetenv("FQ_FORCE_ARCH");
  CHECK(std::string(best_kernels().name) == fq_test::cpu_kernels().front().name);
  std::vector<float> a(3), b(4);
  CHECK_THROWS_AS(fake_quantize(best_kernels(), bf16, round_options{}, a, b), fq::error);
}
