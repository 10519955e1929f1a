// SPDX-License-Identifier: MIT
// Fake quantization of float32 in place (nearest-even, each format's default overflow policy) by
// every kernel architecture this CPU runs, forced through the dispatcher and named in the
// benchmark, on 64 MiB (memory-bound) and 16 KiB (in L1). Baselines in the same run: the F16C
// round trip (vcvtps2ph + vcvtph2ps) in place, the AVX512-BF16 round trip (vcvtneps2bf16 + shift)
// in place where the CPU has it, and memcpy of the same bytes to a second buffer.
// Issue 3's targets, as ratios of items/s: 64 MiB: every format ≥ 0.95 × F16C; 16 KiB: fp16 ≥
// 1.0 × F16C, bf16 ≥ 0.8 × AVX512-BF16, fp8_e4m3 and fp8_e5m2 ≥ 0.5 × memcpy.
#include <benchmark/benchmark.h>

#include <cstring>
#include <fakequant/format/dispatch.hpp>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FQ_BENCH_X86 1
#endif

namespace {

using namespace fq::format;

constexpr std::size_t big = (std::size_t{64} << 20) / sizeof(float);
constexpr std::size_t small = (std::size_t{16} << 10) / sizeof(float);

// Weights-like values (Student t, scale 0.02) with a sprinkle of large and tiny magnitudes.
std::vector<float> make_data(std::size_t n) {
  std::vector<float> v(n);
  std::mt19937_64 rng(3);
  std::student_t_distribution<float> t(5);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.02f * t(rng) * (i % 97 == 0 ? 1e4f : 1.0f);
  return v;
}

void count(benchmark::State& st, std::size_t n) {
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * n));
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(float)));
}

void bm_kernel(benchmark::State& st, kernel_table k, float_format f, std::size_t n) {
  auto data = make_data(n);
  round_options o;
  o.overflow = f.default_overflow();
  const kernel_params p = kernel_params::of(f, o);
  for (auto _ : st) {
    k.fake_quantize(p, data.data(), data.data(), n, 0);
    benchmark::ClobberMemory();
  }
  count(st, n);
}

void bm_memcpy(benchmark::State& st, std::size_t n) {
  auto a = make_data(n);
  std::vector<float> b(n);
  for (auto _ : st) {
    std::memcpy(b.data(), a.data(), n * sizeof(float));
    benchmark::ClobberMemory();
  }
  count(st, n);
}

#ifdef FQ_BENCH_X86
[[gnu::target("avx2,f16c")]] void f16c_round_trip(float* x, std::size_t n) {
  for (std::size_t i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
}
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h here (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
[[gnu::target("avx512f,avx512bw,avx512bf16")]] void bf16_round_trip(float* x, std::size_t n) {
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm512_storeu_si512(x + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

void bm_hardware(benchmark::State& st, void (*rt)(float*, std::size_t), std::size_t n) {
  auto data = make_data(n);
  for (auto _ : st) {
    rt(data.data(), n);
    benchmark::ClobberMemory();
  }
  count(st, n);
}
#endif

const bool registered = [] {
  struct size_case {
    const char* name;
    std::size_t n;
  };
  const size_case sizes[] = {{"64MiB", big}, {"16KiB", small}};
  for (const auto& s : sizes) {
    const std::string tail = std::string("/") + s.name;
#ifdef FQ_BENCH_X86
    if (fq::detail::cpu_has_arch("avx2"))
      benchmark::RegisterBenchmark(("baseline/f16c_round_trip" + tail).c_str(), bm_hardware,
                                   &f16c_round_trip, s.n);
    if (__builtin_cpu_supports("avx512bf16"))
      benchmark::RegisterBenchmark(("baseline/avx512bf16_round_trip" + tail).c_str(), bm_hardware,
                                   &bf16_round_trip, s.n);
#endif
    benchmark::RegisterBenchmark(("baseline/memcpy" + tail).c_str(), bm_memcpy, s.n);
    for (const std::string arch : {"avx512", "avx2", "sse2", "default"}) {
      if (!fq::detail::cpu_has_arch(arch)) continue;
      if (arch == "default" && fq::detail::arch_names() != "default") continue;
      const auto k = kernels_for(arch);
      for (const auto& f : {bf16, fp16, fp8_e4m3, fp8_e5m2})
        benchmark::RegisterBenchmark(
            ("fake_quantize/" + std::string(f.name) + "/" + arch + tail).c_str(), bm_kernel, k, f,
            s.n);
    }
  }
  return true;
}();

}  // namespace
