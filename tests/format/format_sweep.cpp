// SPDX-License-Identifier: MIT
// Exhaustive sweeps on all 2^32 float32 inputs: the SIMD format kernels of every architecture this
// CPU runs and the scalar round_to, each against the tests' integer reference
// (format/integer_reference.hpp: bit-pattern arithmetic only, independent of all of them; NaN
// results compared as "is NaN"); and the kernels against the hardware conversions (F16C,
// AVX512-BF16) on all non-NaN inputs.
//   fq_format_sweep hot          bf16, fp16, fp8_e4m3, fp8_e5m2, default overflow, nearest-even
//   fq_format_sweep oracles      F16C and AVX512-BF16 (each skipped with a message when absent)
//   fq_format_sweep all FMT      every combination of FMT (below); runs only with FQ_SWEEP_ALL=1
//                                (scripts/exhaustive.sh; hours on 2 cores), else exits 77
//   fq_format_sweep share K/N    combinations K, K+N, K+2N, … of the list of every combination of
//   fq_format_sweep share auto   every predefined format; auto: N = FQ_SWEEP_SHARES (default 32)
//   and
//                                K = the UTC day number mod N (FQ_SWEEP_SHARE=K overrides), so CI
//                                sweeps a different share each day and all of them in N days
// A combination is a deterministic rounding × an overflow policy the format allows, plus
// nearest-even with the default policy and input, output or both subnormal flushes.
// Exit status: 0 all equal, 1 mismatches, 2 usage, 77 skipped.
#include <algorithm>
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

#include "format/integer_reference.hpp"
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

// Every kernel and round_to against the integer reference on all 2^32 inputs for one combination.
std::uint64_t sweep(const fq_test::combo& c, fq::thread_pool& pool) {
  const auto kernels = fq_test::cpu_kernels();
  const reference_fn ref = reference_for(format_index(c.format),
                                         std::make_index_sequence<std::size(predefined_formats)>{});
  const kernel_params p = kernel_params::of(c.format, c.options);
  const fq_test::integer_rounder oracle(c.format, c.options);
  mismatch_log log;
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(pieces, [&](std::size_t b, std::size_t e, std::size_t) {
    std::vector<float> x(piece), want(piece), got(piece);
    for (std::size_t k = b; k < e; ++k) {
      const auto first = static_cast<std::uint32_t>(k * piece);
      fill_bits(first, x.data());
      for (std::size_t i = 0; i < piece; ++i)
        want[i] = std::bit_cast<float>(oracle(first + static_cast<std::uint32_t>(i)));
      const auto check = [&](const char* who) {
        for (std::size_t i = 0; i < piece; ++i)
          if (!fq_test::same_result(got[i], want[i])) log.add(who, c.name(), x[i], got[i], want[i]);
      };
      ref(c.options, x.data(), got.data());
      check("round_to");
      for (const auto& kern : kernels) {
        kern.fake_quantize(p, x.data(), got.data(), piece, 0);
        check(kern.name);
      }
    }
  });
  std::string names = "round_to";
  for (const auto& k : kernels) names += std::string(",") + k.name;
  std::printf("%-44s all 2^32 inputs, %s against the integer reference: %llu mismatches (%.1f s)\n",
              c.name().c_str(), names.c_str(), static_cast<unsigned long long>(log.count.load()),
              seconds_since(t0));
  std::fflush(stdout);
  return log.count.load();
}

// Every combination of `f` the sweeps cover.
std::vector<fq_test::combo> sweep_combos(const float_format& f) {
  auto out = fq_test::combos_of(f);
  for (int flush = 1; flush <= 3; ++flush) {
    round_options o;
    o.overflow = f.default_overflow();
    o.flush_input_subnormals = (flush & 1) != 0;
    o.flush_output_subnormals = (flush & 2) != 0;
    out.push_back({f, o});
  }
  return out;
}

// Every predefined format's combinations, in order.
std::vector<fq_test::combo> all_combos() {
  std::vector<fq_test::combo> all;
  for (const auto& f : predefined_formats)
    for (const auto& c : sweep_combos(f)) all.push_back(c);
  return all;
}

// The combinations of share K of N: K, K + N, K + 2N, … of all_combos().
std::vector<fq_test::combo> share_of(std::size_t k, std::size_t n) {
  const auto all = all_combos();
  std::vector<fq_test::combo> out;
  for (std::size_t i = k; i < all.size(); i += n) out.push_back(all[i]);
  std::printf("share %zu/%zu: %zu of %zu combinations (rerun: fq_format_sweep share %zu/%zu)\n", k,
              n, out.size(), all.size(), k, n);
  return out;
}

std::size_t env_or(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
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
      std::printf("FQ-SKIPPED: this CPU has no F16C\n");
    if (__builtin_cpu_supports("avx512bf16")) {
      auto c = default_rne(bf16);
      c.options.flush_input_subnormals = true;
      bad += oracle("AVX512-BF16", &bf16_round_trip, c, pool);
    } else {
      std::printf("FQ-SKIPPED: this CPU has no AVX512-BF16 (vcvtneps2bf16)\n");
    }
#else
    std::printf("FQ-SKIPPED: the hardware oracles are x86 instructions\n");
#endif
  } else if (what == "all" && argc == 3) {
    const char* on = std::getenv("FQ_SWEEP_ALL");
    if (!on || std::string(on) != "1") {
      std::printf("FQ-SKIPPED: set FQ_SWEEP_ALL=1 to sweep every combination of %s\n", argv[2]);
      return 77;
    }
    for (const auto& c : sweep_combos(format_from_name(argv[2]))) bad += sweep(c, pool);
  } else if (what == "share" && argc == 3) {
    const std::string arg = argv[2];
    std::size_t k = 0, n = 0;
    if (arg == "auto") {
      const std::size_t per_run = std::max<std::size_t>(1, env_or("FQ_SWEEP_PER_RUN", 2));
      n = (all_combos().size() + per_run - 1) / per_run;
      const auto days = std::chrono::duration_cast<std::chrono::days>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      k = env_or("FQ_SWEEP_SHARE", static_cast<std::size_t>(days)) % n;
    } else if (const auto slash = arg.find('/'); slash != std::string::npos) {
      k = std::strtoull(arg.c_str(), nullptr, 10);
      n = std::strtoull(arg.c_str() + slash + 1, nullptr, 10);
    }
    if (n == 0 || k >= n) {
      std::fprintf(stderr, "usage: fq_format_sweep share K/N (0 <= K < N) | share auto\n");
      return 2;
    }
    for (const auto& c : share_of(k, n)) bad += sweep(c, pool);
  } else {
    std::fprintf(stderr,
                 "usage: fq_format_sweep hot | oracles | all FORMAT | share K/N | share auto\n");
    return 2;
  }
  std::printf("total %.1f s on %zu threads\n", seconds_since(t0), pool.size());
  return bad == 0 ? 0 : 1;
}
