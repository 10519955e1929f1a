// SPDX-License-Identifier: MIT
// The paired reducer, with each dispatched kernel (stats/dispatch.hpp), against a plain read-only
// SIMD pass over the same two 64 MiB arrays, and quantiles by selection against a full sort. The
// issue's target: reducer time ≤ 2× the plain pass (ratio ≥ 0.5), with the same thread count.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <fakequant/gguf.hpp>
#include <fakequant/gguf/blocks.hpp>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/distribution.hpp>
#include <fakequant/stats/paired.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr std::size_t n = (std::size_t{64} << 20) / sizeof(float);  // 64 MiB per array

struct data {
  std::vector<float> a, b;
  data() : a(n), b(n) {
    std::mt19937_64 rng(1);
    std::student_t_distribution<float> t(5);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = 0.02f * t(rng);
      b[i] = std::round(a[i] * 400.0f) / 400.0f;
    }
  }
};
const data& shared() {
  static const data d;
  return d;
}

// Sum of both arrays with float SIMD accumulators: the memory-speed baseline, in this build's
// instruction set (xsimd's default) and, through target attributes, in AVX2 and AVX-512.
float plain_sum(const float* a, const float* b, std::size_t len) {
  using batch = xsimd::batch<float>;
  batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  std::size_t i = 0;
  for (; i + 2 * batch::size <= len; i += 2 * batch::size) {
    s0 += batch::load_unaligned(a + i);
    s1 += batch::load_unaligned(b + i);
    s2 += batch::load_unaligned(a + i + batch::size);
    s3 += batch::load_unaligned(b + i + batch::size);
  }
  float s = xsimd::hadd((s0 + s1) + (s2 + s3));
  for (; i < len; ++i) s += a[i] + b[i];
  return s;
}

#if defined(__GNUC__) && defined(__x86_64__)
// GCC 12 warns inside its own avx512fintrin.h (GCC PR 105593), as in examples/CMakeLists.txt.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx2"))) float plain_sum_avx2(const float* a, const float* b,
                                                     std::size_t len) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(b + i));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 8));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(b + i + 8));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  float s = 0;
  for (float x : t) s += x;
  for (; i < len; ++i) s += a[i] + b[i];
  return s;
}

__attribute__((target("avx512f"))) float plain_sum_avx512(const float* a, const float* b,
                                                          std::size_t len) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(b + i));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 16));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(b + i + 16));
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < len; ++i) s += a[i] + b[i];
  return s;
}
#endif

void bm_plain_read(benchmark::State& st, const char* arch) {
  using fn = float (*)(const float*, const float*, std::size_t);
  fn sum = plain_sum;
  std::string label = xsimd::default_arch::name();
#if defined(__GNUC__) && defined(__x86_64__)
  const auto cpu = xsimd::available_architectures();
  if (std::string_view(arch) == "avx2") {
    if (!cpu.avx2) return st.SkipWithError("no AVX2");
    sum = plain_sum_avx2, label = "avx2";
  } else if (std::string_view(arch) == "avx512") {
    if (!cpu.avx512f) return st.SkipWithError("no AVX-512");
    sum = plain_sum_avx512, label = "avx512";
  }
#else
  (void)arch;
#endif
  const auto& d = shared();
  const auto threads = static_cast<unsigned>(st.range(0));
  for (auto _ : st) {
    std::vector<float> part(threads);
    std::vector<std::thread> pool;
    for (unsigned k = 0; k < threads; ++k)
      pool.emplace_back([&, k] {
        const std::size_t f = n * k / threads, l = n * (k + 1) / threads;
        part[k] = sum(d.a.data() + f, d.b.data() + f, l - f);
      });
    for (auto& t : pool) t.join();
    benchmark::DoNotOptimize(part);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * 2 * n * sizeof(float)));
  st.SetLabel(label);
}

void bm_paired(benchmark::State& st, const char* arch) {
  fq::stats::kernel_table kernel;
  try {
    kernel = fq::stats::kernels_for(arch);
  } catch (const fq::error& e) {
    st.SkipWithError(e.what());
    return;
  }
  const auto& d = shared();
  const auto threads = static_cast<unsigned>(st.range(0));
  for (auto _ : st) {
    auto s = fq::stats::compare(d.a, d.b, {.threads = threads, .kernels = kernel});
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * 2 * n * sizeof(float)));
  st.SetLabel(kernel.name);
}

void bm_quantiles_select(benchmark::State& st) {
  const auto& d = shared();
  const std::size_t len = static_cast<std::size_t>(st.range(0));
  const std::span<const float> x(d.a.data(), len);
  for (auto _ : st) {
    auto q = fq::stats::quantiles(x, fq::stats::default_probabilities);
    benchmark::DoNotOptimize(q);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * len));
}

void bm_quantiles_full_sort(benchmark::State& st) {
  const auto& d = shared();
  const std::size_t len = static_cast<std::size_t>(st.range(0));
  for (auto _ : st) {
    std::vector<float> c(d.a.begin(), d.a.begin() + static_cast<std::ptrdiff_t>(len));
    std::sort(c.begin(), c.end());
    benchmark::DoNotOptimize(c.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * len));
}

// Block decoders on the largest tensor of each type in the kq models (output floats per second).
void bm_decode(benchmark::State& st, const char* file, const char* tensor) {
  const std::string path = std::string(FQ_SHARED_DIR) + "/testdata/models/" + file;
  std::optional<fq::gguf::file> f;
  try {
    f.emplace(fq::gguf::file::open(path));
  } catch (const fq::error& e) {
    st.SkipWithError(e.what());
    return;
  }
  const auto& t = f->tensor(tensor);
  std::vector<float> out(t.ne[0]);
  const auto data = f->tensor_data(t);
  for (auto _ : st) {
    for (std::uint64_t r = 0; r < t.rows(); ++r) fq::gguf::decode(t.type, data, r * t.ne[0], out);
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * t.elements));
  st.SetLabel(std::string(fq::gguf::type_name(t.type)));
}

}  // namespace

BENCHMARK_CAPTURE(bm_decode, f16, "kq-f16.gguf", "token_embd.weight");
BENCHMARK_CAPTURE(bm_decode, q8_0, "../models/tl-mini-q8_0.gguf", "token_embd.weight");
BENCHMARK_CAPTURE(bm_decode, q4_0, "kq-q4_0.gguf", "blk.0.ffn_up.weight");
BENCHMARK_CAPTURE(bm_decode, q4_k, "kq-q4_k_m.gguf", "blk.0.ffn_up.weight");
BENCHMARK_CAPTURE(bm_decode, q5_k, "kq-q5_k_m.gguf", "blk.0.ffn_up.weight");
BENCHMARK_CAPTURE(bm_decode, q6_k, "kq-q6_k.gguf", "token_embd.weight");
BENCHMARK_CAPTURE(bm_plain_read, sse2, "sse2")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_plain_read, avx2, "avx2")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_plain_read, avx512, "avx512")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_paired, sse2, "sse2")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_paired, avx2, "avx2")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_paired, avx512, "avx512")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_quantiles_select)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_quantiles_full_sort)->Arg(1 << 24)->Unit(benchmark::kMillisecond)->UseRealTime();
