// SPDX-License-Identifier: MIT
// Run-time choice of the format kernels, with the evaluator's architecture names and its
// FQ_FORCE_ARCH override (llama/dispatch.hpp). The per-architecture tables are defined in
// translation units compiled with that architecture's flags (examples/fakequant/arch/). They are
// declared weak, so a program that does not link them still builds: best_kernels() then gives
// default_format_kernels(), and kernels_for() says they are missing.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <xsimd/xsimd.hpp>

#include "../detail/arch.hpp"
#include "../error.hpp"
#include "kernels.hpp"

namespace fq::format {

namespace detail {
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define FQ_FORMAT_KERNELS_WEAK [[gnu::weak]]
#else
#define FQ_FORMAT_KERNELS_WEAK
#endif
FQ_FORMAT_KERNELS_WEAK format_kernels format_kernels_sse2() noexcept;
FQ_FORMAT_KERNELS_WEAK format_kernels format_kernels_avx2() noexcept;
FQ_FORMAT_KERNELS_WEAK format_kernels format_kernels_avx512() noexcept;
#undef FQ_FORMAT_KERNELS_WEAK
#endif
}  // namespace detail

/// Whether the program links the per-architecture kernels (examples/fakequant/arch/).
inline bool arch_kernels_linked() noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  return detail::format_kernels_sse2 != nullptr && detail::format_kernels_avx2 != nullptr &&
         detail::format_kernels_avx512 != nullptr;
#else
  return true;
#endif
}

/// Names accepted by kernels_for() and FQ_FORCE_ARCH, best first.
inline std::string_view kernel_names() noexcept { return fq::detail::arch_names(); }

/// Whether this CPU runs the named kernels (false for unknown names).
inline bool cpu_has(std::string_view name) noexcept { return fq::detail::cpu_has_arch(name); }

/// The kernels of a named architecture; an error when the name is unknown, the CPU lacks it or
/// the program does not link the per-architecture kernels.
inline format_kernels kernels_for(std::string_view name) {
  fq::detail::require_arch(name);
  if (name == "default") return default_format_kernels();
  if (!arch_kernels_linked())
    throw error(errc::unsupported, "",
                "this program was built without the per-architecture format kernels");
#if defined(__x86_64__) || defined(_M_X64)
  if (name == "avx512") return detail::format_kernels_avx512();
  if (name == "avx2") return detail::format_kernels_avx2();
  return detail::format_kernels_sse2();
#else
  return default_format_kernels();
#endif
}

/// The best kernels this CPU runs, unless FQ_FORCE_ARCH names others; the compile flags' own
/// (default_format_kernels) when the program does not link the per-architecture ones.
inline format_kernels best_kernels() {
  const char* forced = std::getenv("FQ_FORCE_ARCH");
  if (!(forced && *forced) && !arch_kernels_linked()) return default_format_kernels();
  return kernels_for(fq::detail::best_arch());
}

}  // namespace fq::format
