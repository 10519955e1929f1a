// SPDX-License-Identifier: MIT
// Run-time choice of the evaluator's kernels. The per-architecture tables are defined in
// translation units compiled with that architecture's flags (the program's build adds them; see
// examples/fakequant/arch/). A program that does not add them uses default_kernels(), which is
// whatever its own compile flags allow.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <xsimd/xsimd.hpp>

#include "../error.hpp"
#include "simd.hpp"

namespace fq::llama {

namespace detail {
#if defined(__x86_64__) || defined(_M_X64)
kernel_table kernels_sse2() noexcept;
kernel_table kernels_avx2() noexcept;
kernel_table kernels_avx512() noexcept;
#endif
}  // namespace detail

/// Names accepted by kernels_for() and the FQ_FORCE_ARCH environment variable.
inline std::string_view kernel_names() noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  return "avx512, avx2, sse2";
#else
  return "default";
#endif
}

/// The kernels of a named architecture; an error when the name is unknown or the CPU lacks it.
inline kernel_table kernels_for(std::string_view name) {
#if defined(__x86_64__) || defined(_M_X64)
  const auto cpu = xsimd::available_architectures();
  if (name == "avx512") {
    if (!cpu.avx512bw) throw error(errc::unsupported, "", "this CPU has no AVX-512 (F/BW)");
    return detail::kernels_avx512();
  }
  if (name == "avx2") {
    if (!(cpu.avx2 && cpu.fma3_avx2))
      throw error(errc::unsupported, "", "this CPU has no AVX2+FMA");
    return detail::kernels_avx2();
  }
  if (name == "sse2") return detail::kernels_sse2();
#endif
  if (name == "default") return default_kernels();
  throw error(errc::invalid_argument, "",
              "unknown kernel architecture '" + std::string(name) +
                  "' (known: " + std::string(kernel_names()) + ")");
}

/// The best kernels this CPU runs, unless FQ_FORCE_ARCH names others.
inline kernel_table best_kernels() {
  if (const char* forced = std::getenv("FQ_FORCE_ARCH"); forced && *forced)
    return kernels_for(forced);
#if defined(__x86_64__) || defined(_M_X64)
  const auto cpu = xsimd::available_architectures();
  if (cpu.avx512bw) return detail::kernels_avx512();
  if (cpu.avx2 && cpu.fma3_avx2) return detail::kernels_avx2();
  return detail::kernels_sse2();
#else
  return default_kernels();
#endif
}

}  // namespace fq::llama
