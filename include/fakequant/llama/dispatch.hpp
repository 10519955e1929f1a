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

#include "../detail/arch.hpp"
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
inline std::string_view kernel_names() noexcept { return fq::detail::arch_names(); }

/// The kernels of a named architecture; an error when the name is unknown or the CPU lacks it.
inline kernel_table kernels_for(std::string_view name) {
  fq::detail::require_arch(name);
#if defined(__x86_64__) || defined(_M_X64)
  if (name == "avx512") return detail::kernels_avx512();
  if (name == "avx2") return detail::kernels_avx2();
  if (name == "sse2") return detail::kernels_sse2();
#endif
  return default_kernels();
}

/// The best kernels this CPU runs, unless FQ_FORCE_ARCH names others.
inline kernel_table best_kernels() { return kernels_for(fq::detail::best_arch()); }

}  // namespace fq::llama
