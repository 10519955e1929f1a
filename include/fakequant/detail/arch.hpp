// SPDX-License-Identifier: MIT
// The instruction sets the run-time dispatchers (llama/, format/ and stats/dispatch.hpp) choose
// between: one name table, one CPU check and one FQ_FORCE_ARCH rule for all three, so they always
// agree. A name's check covers every flag its translation units are compiled with
// (examples/CMakeLists.txt): a CPU that passes runs every instruction the compiler may emit there.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

#include "../error.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define FQ_ARCH_X86 1
#endif

namespace fq::detail {

/// The names the dispatchers' kernels_for() and FQ_FORCE_ARCH accept, best first. "default" is
/// what the including translation unit's own compile flags allow (xsimd::default_arch).
#ifdef FQ_ARCH_X86
inline constexpr std::string_view arch_list[] = {"avx512", "avx2", "sse2", "default"};
inline constexpr std::string_view arch_list_text = "avx512, avx2, sse2, default";
#else
inline constexpr std::string_view arch_list[] = {"default"};
inline constexpr std::string_view arch_list_text = "default";
#endif

/// arch_list as one readable string, for messages.
inline std::string_view arch_names() noexcept { return arch_list_text; }

#ifdef FQ_ARCH_X86
/// F16C (CPUID.1:ECX bit 29); clang 14's __builtin_cpu_supports does not know the name.
inline bool cpu_has_f16c() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}
#endif

/// Whether this CPU runs the named kernels (false for unknown names). __builtin_cpu_supports also
/// checks that the operating system saves the AVX / AVX-512 registers.
inline bool cpu_has_arch(std::string_view name) noexcept {
#ifdef FQ_ARCH_X86
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    cpu_has_f16c();  // -mavx2 -mfma -mf16c
  if (name == "avx2") return avx2;
  if (name == "avx512")
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512vl");
  return name == "sse2" || name == "default";
#else
  return name == "default";
#endif
}

/// Checks a name given by the user or FQ_FORCE_ARCH: an error when it is unknown or this CPU
/// cannot run it.
inline void require_arch(std::string_view name) {
  if (std::find(std::begin(arch_list), std::end(arch_list), name) == std::end(arch_list))
    throw error(errc::invalid_argument, "",
                "unknown kernel architecture '" + std::string(name) +
                    "' (known: " + std::string(arch_names()) + ")");
  if (!cpu_has_arch(name))
    throw error(errc::unsupported, "", "this CPU cannot run the " + std::string(name) + " kernels");
}

/// FQ_FORCE_ARCH when set (checked), otherwise the best architecture this CPU runs.
inline std::string best_arch() {
  if (const char* forced = std::getenv("FQ_FORCE_ARCH"); forced && *forced) {
    require_arch(forced);
    return forced;
  }
#ifdef FQ_ARCH_X86
  if (cpu_has_arch("avx512")) return "avx512";
  if (cpu_has_arch("avx2")) return "avx2";
  return "sse2";
#else
  return "default";
#endif
}

}  // namespace fq::detail
