// SPDX-License-Identifier: MIT
// Exhaustive sweeps: the SIMD format kernels of every architecture this CPU runs against the scalar
// reference round_to on all 2^32 float32 inputs (NaN results compared as "is NaN"), and against
// the hardware conversions (F16C, AVX512-BF16) on all non-NaN inputs.
//   fq_format_sweep hot       bf16, fp16, fp8_e4m3, fp8_e5m2, default overflow, nearest-even
//   fq_format_sweep oracles   F16C and AVX512-BF16 (each skipped with a message when absent)
//   fq_format_sweep all FMT   every rounding (but stochastic) × overflow policy of FMT; runs only
//                             with FQ_SWEEP_ALL=1 (hours on 2 cores), else exits 77 (skipped)
// Exit status: 0 all equal, 1 mismatches, 2 usage, 77 skipped.
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fakequant/thread_pool.hpp>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "format/kernel_check.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FQ_SWEEP_X86 1
#endif

using namespace fq::format;

namespace {

constexpr std::size_t piece = std::size_t{1} << 16;
constexpr std::size_t pieces = (std::size_t{1} << 32) / piece;

void fill_bits(std::uint32_t first, float* x) {
  for (std::size_t i = 0; i < piece; ++i)
    x[i] = std::bit_cast<float>(first + static_cast<std::uint32_t>(i));
}

// The reference over one piece, specialised for one predefined format so the compiler folds the
// format's constants into round_to (the same function, just faster); with SSE4.1 where the CPU
// has it, so nearbyint and friends are single instructions instead of library calls.
template <std::size_t F>
[[gnu::flatten]] void reference_plain(const round_options& o, const float* x, float* out) {
  constexpr const float_format& f = predefined_formats[F];
  for (std::size_t i = 0; i < piece; ++i) out[i] = round_to(f, x[i], o);
}
#ifdef FQ_SWEEP_X86
template <std::size_t F>
[[gnu::flatten, gnu::target("sse4.1")]] void reference_sse41(const round_options& o, const float* x,
                                                             float* out) {
  constexpr const float_format& f = predefined_formats[F];
  for (std::size_t i = 0; i < piece; ++i) out[i] = round_to(f, x[i], o);
}
#endif

using reference_fn = void (*)(const round_options&, const float*, float*);

template <std::size_t... F>
reference_fn reference_for(std::size_t index, std::index_sequence<F...>) {
  constexpr std::size_t n = sizeof...(F);
#ifdef FQ_SWEEP_X86
  if (__builtin_cpu_supports("sse4.1")) {
    constexpr reference_fn fast[n] = {&reference_sse41<F>...};
    return fast[index];
  }
#endif
  constexpr reference_fn plain[n] = {&reference_plain<F>...};
  return plain[index];
}

std::size_t format_index(const float_format& f) {
  for (std::size_t i = 0; i < std::size(predefined_formats); ++i)
    if (predefined_formats[i].name == f.name) return i;
  std::fprintf(stderr, "not a predefined format: %s\n", std::string(f.name).c_str());
  std::exit(2);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct mismatch_log {
  std::atomic<std::uint64_t> count{0};
  std::mutex m;
  void add(const char* who, const std::string& what, float x, float got, float want) {
    if (count.fetch_add(1) < 5) {
      std::lock_guard lock(m);
      std::printf("MISMATCH %s %s: x %08x gave %08x, expected %08x\n", who, what.c_str(),
                  std::bit_cast<std::uint32_t>(x), std::bit_cast<std::uint32_t>(got),
                  std::bit_cast<std::uint32_t>(want));
    }
  }
};

// Every kernel against round_to on all 2^32 inputs for one combination.
std::uint64_t sweep(const fq_test::combo& c, fq::thread_pool& pool) {
  const auto kernels = fq_test::cpu_kernels();
  const reference_fn ref = reference_for(format_index(c.format),
                                         std::make_index_sequence<std::size(predefined_formats)>{});
  const kernel_params p = kernel_params::of(c.format, c.options);
  mismatch_log log;
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(pieces, [&](std::size_t b, std::size_t e, std::size_t) {
    std::vector<float> x(piece), want(piece), got(piece);
    for (std::size_t k = b; k < e; ++k) {
      fill_bits(static_cast<std::uint32_t>(k * piece), x.data());
      ref(c.options, x.data(), want.data());
      for (const auto& kern : kernels) {
        kern.fake_quantize(p, x.data(), got.data(), piece, 0);
        for (std::size_t i = 0; i < piece; ++i)
          if (!fq_test::same_result(got[i], want[i]))
            log.add(kern.name, c.name(), x[i], got[i], want[i]);
      }
    }
  });
  std::string names;
  for (const auto& k : kernels) names += std::string(names.empty() ? "" : ",") + k.name;
  std::printf("%-44s all 2^32 inputs, kernels %s: %llu mismatches (%.1f s)\n", c.name().c_str(),
              names.c_str(), static_cast<unsigned long long>(log.count.load()), seconds_since(t0));
  std::fflush(stdout);
  return log.count.load();
}

#ifdef FQ_SWEEP_X86
// Hardware round trips of one piece, in place.
[[gnu::target("avx2,f16c")]] void f16c_round_trip(float* x) {
  for (std::size_t i = 0; i < piece; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h here (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
[[gnu::target("avx512f,avx512bf16")]] void bf16_round_trip(float* x) {
  for (std::size_t i = 0; i < piece; i += 16) {
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm512_storeu_si512(x + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Every kernel against a hardware round trip on all non-NaN inputs.
std::uint64_t oracle(const char* what, void (*hw)(float*), const fq_test::combo& c,
                     fq::thread_pool& pool) {
  const auto kernels = fq_test::cpu_kernels();
  const kernel_params p = kernel_params::of(c.format, c.options);
  mismatch_log log;
  std::atomic<std::uint64_t> compared{0};
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(pieces, [&](std::size_t b, std::size_t e, std::size_t) {
    std::vector<float> x(piece), want(piece), got(piece);
    std::uint64_t n = 0;
    for (std::size_t k = b; k < e; ++k) {
      fill_bits(static_cast<std::uint32_t>(k * piece), x.data());
      std::memcpy(want.data(), x.data(), piece * 4);
      hw(want.data());
      for (const auto& kern : kernels) {
        kern.fake_quantize(p, x.data(), got.data(), piece, 0);
        for (std::size_t i = 0; i < piece; ++i) {
          if (std::isnan(x[i])) continue;
          ++n;
          if (std::bit_cast<std::uint32_t>(got[i]) != std::bit_cast<std::uint32_t>(want[i]))
            log.add(kern.name, std::string(what) + " vs " + c.name(), x[i], got[i], want[i]);
        }
      }
    }
    compared += n;
  });
  std::printf("%-12s vs %-32s all non-NaN inputs (%llu comparisons): %llu mismatches (%.1f s)\n",
              what, c.name().c_str(), static_cast<unsigned long long>(compared.load()),
              static_cast<unsigned long long>(log.count.load()), seconds_since(t0));
  std::fflush(stdout);
  return log.count.load();
}
#endif

fq_test::combo default_rne(const float_format& f) {
  round_options o;
  o.overflow = f.default_overflow();
  return {f, o};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  fq::thread_pool pool;
  std::uint64_t bad = 0;
  const auto t0 = std::chrono::steady_clock::now();
  if (what == "hot" && argc == 2) {
    for (const auto& f : {bf16, fp16, fp8_e4m3, fp8_e5m2}) bad += sweep(default_rne(f), pool);
  } else if (what == "oracles" && argc == 2) {
#ifdef FQ_SWEEP_X86
    if (fq::detail::cpu_has_arch("avx2"))
      bad += oracle("F16C", &f16c_round_trip, default_rne(fp16), pool);
    else
      std::printf("SKIPPED: this CPU has no F16C\n");
    if (__builtin_cpu_supports("avx512bf16")) {
      auto c = default_rne(bf16);
      c.options.flush_input_subnormals = true;
      bad += oracle("AVX512-BF16", &bf16_round_trip, c, pool);
    } else {
      std::printf("SKIPPED: this CPU has no AVX512-BF16 (vcvtneps2bf16)\n");
    }
#else
    std::printf("SKIPPED: the hardware oracles are x86 instructions\n");
#endif
  } else if (what == "all" && argc == 3) {
    const char* on = std::getenv("FQ_SWEEP_ALL");
    if (!on || std::string(on) != "1") {
      std::printf("SKIPPED: set FQ_SWEEP_ALL=1 to sweep every combination of %s\n", argv[2]);
      return 77;
    }
    for (const auto& c : fq_test::combos_of(format_from_name(argv[2]))) bad += sweep(c, pool);
  } else {
    std::fprintf(stderr, "usage: fq_format_sweep hot | oracles | all FORMAT\n");
    return 2;
  }
  std::printf("total %.1f s on %zu threads\n", seconds_since(t0), pool.size());
  return bad == 0 ? 0 : 1;
}
