// SPDX-License-Identifier: MIT
// Run-time choice of the paired reducer's kernel, as for the evaluator's (llama/dispatch.hpp): the
// per-architecture kernels are defined in translation units compiled with that architecture's
// flags (examples/fakequant/arch/stats_kernels_*.cpp), which a program using this header links.
// Every kernel gives the same bits; they differ only in speed.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <xsimd/xsimd.hpp>

#include "../detail/arch.hpp"
#include "../error.hpp"
#include "paired.hpp"

namespace fq::stats {

namespace detail {
#if defined(__x86_64__) || defined(_M_X64)
paired_kernel paired_kernel_sse2() noexcept;
paired_kernel paired_kernel_avx2() noexcept;
paired_kernel paired_kernel_avx512() noexcept;
#endif
}  // namespace detail

/// The kernel of a named architecture (fq::detail::arch_names());
/// an error when the name is unknown or the CPU lacks it.
///
///     auto s = fq::stats::compare(a, b, {.kernel = fq::stats::paired_kernel_for("avx2")});
inline paired_kernel paired_kernel_for(std::string_view name) {
  fq::detail::require_arch(name);
#if defined(__x86_64__) || defined(_M_X64)
  if (name == "avx512") return detail::paired_kernel_avx512();
  if (name == "avx2") return detail::paired_kernel_avx2();
  if (name == "sse2") return detail::paired_kernel_sse2();
#endif
  return make_paired_kernel<xsimd::default_arch>();
}

/// The fastest kernel this CPU runs, unless the FQ_FORCE_ARCH environment variable names another.
inline paired_kernel best_paired_kernel() { return paired_kernel_for(fq::detail::best_arch()); }

}  // namespace fq::stats
