// SPDX-License-Identifier: MIT
// The instruction sets the kernel families (format/, stats/ and llama/dispatch.hpp) are chosen
// between at run time: one name table, one CPU check, one FQ_FORCE_ARCH rule and one selection
// function for all three, so they always agree. A name's check covers every flag its translation
// unit is compiled with (src/kernels_<arch>.cpp, cmake/fq_kernels.cmake): a CPU that passes runs
// every instruction the compiler may emit there.
//
// The per-architecture tables are declared here as arch_kernels<Table> and defined in those
// translation units, which the fakequant::fakequant CMake target adds to every program that links
// it. A build configured with FQ_ARCH_KERNELS=OFF defines FQ_NO_ARCH_KERNELS: then only "default"
// exists, the kernels the including translation unit's own flags allow.
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
#if !defined(FQ_NO_ARCH_KERNELS)
#define FQ_ARCH_KERNELS 1
#endif
#endif

namespace fq::detail {

/// The names kernels_for() and FQ_FORCE_ARCH accept, best first. "default" is what the including
/// translation unit's own compile flags allow (xsimd::default_arch).
#ifdef FQ_ARCH_KERNELS
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
#ifdef FQ_ARCH_KERNELS
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
  if (std::find(std::begin(arch_list), std::end(arch_list), name) == std::end(arch_list)) {
    std::string why = "unknown kernel architecture '" + std::string(name) +
                      "' (known: " + std::string(arch_names()) + ")";
#if defined(FQ_ARCH_X86) && !defined(FQ_ARCH_KERNELS)
    why += "; this program was built with FQ_ARCH_KERNELS=OFF, without per-architecture kernels";
#endif
    throw error(errc::invalid_argument, "", why);
  }
  if (!cpu_has_arch(name))
    throw error(errc::unsupported, "", "this CPU cannot run the " + std::string(name) + " kernels");
}

/// FQ_FORCE_ARCH when set (checked), otherwise the best architecture this CPU runs.
inline std::string best_arch() {
  if (const char* forced = std::getenv("FQ_FORCE_ARCH"); forced && *forced) {
    require_arch(forced);
    return forced;
  }
  for (std::string_view name : arch_list)
    if (cpu_has_arch(name)) return std::string(name);
  return "default";
}

/// One kernel family's per-architecture tables: each part specializes it for its kernel_table
/// (static Table sse2() noexcept, avx2() and avx512()), defined in src/kernels_<arch>.cpp.
template <class Table>
struct arch_kernels;

/// The table of the named architecture; `fallback` gives "default". The one selection rule of
/// every part's kernels_for().
template <class Table>
Table kernels_for(std::string_view name, Table (*fallback)() noexcept) {
  require_arch(name);
#ifdef FQ_ARCH_KERNELS
  if (name == "avx512") return arch_kernels<Table>::avx512();
  if (name == "avx2") return arch_kernels<Table>::avx2();
  if (name == "sse2") return arch_kernels<Table>::sse2();
#endif
  return fallback();
}

}  // namespace fq::detail

/// Declares the per-architecture tables of one kernel family (used once, in <part>/dispatch.hpp).
#define FQ_DECLARE_ARCH_KERNELS(Table)     \
  template <>                              \
  struct fq::detail::arch_kernels<Table> { \
    static Table sse2() noexcept;          \
    static Table avx2() noexcept;          \
    static Table avx512() noexcept;        \
  }
