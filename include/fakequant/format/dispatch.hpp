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
inline std::string_view kernel_names() noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  return "avx512, avx2, sse2";
#else
  return "default";
#endif
}

/// Whether this CPU runs the named kernels (false for unknown names).
inline bool cpu_has(std::string_view name) noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  const auto cpu = xsimd::available_architectures();
  if (name == "avx512") return cpu.avx512bw;
  if (name == "avx2") return cpu.avx2;
  return name == "sse2";
#else
  return name == "default";
#endif
}

/// The kernels of a named architecture; an error when the name is unknown or the CPU lacks it.
inline format_kernels kernels_for(std::string_view name) {
#if defined(__x86_64__) || defined(_M_X64)
  const bool known = name == "avx512" || name == "avx2" || name == "sse2";
#else
  const bool known = name == "default";
#endif
  if (!known)
    throw error(errc::invalid_argument, "",
                "unknown kernel architecture '" + std::string(name) +
                    "' (known: " + std::string(kernel_names()) + ")");
  if (!cpu_has(name))
    throw error(errc::unsupported, "", "this CPU cannot run the " + std::string(name) + " kernels");
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

/// The best kernels this CPU runs, unless FQ_FORCE_ARCH names others.
inline format_kernels best_kernels() {
  if (const char* forced = std::getenv("FQ_FORCE_ARCH"); forced && *forced)
    return kernels_for(forced);
#if defined(__x86_64__) || defined(_M_X64)
  if (!arch_kernels_linked()) return default_format_kernels();
  if (cpu_has("avx512")) return detail::format_kernels_avx512();
  if (cpu_has("avx2")) return detail::format_kernels_avx2();
  return detail::format_kernels_sse2();
#else
  return default_format_kernels();
#endif
}

}  // namespace fq::format
