// SPDX-License-Identifier: MIT
// Run-time choice of the evaluator's kernels: the same design as format/ and stats/dispatch.hpp
// (the names, the CPU check and FQ_FORCE_ARCH in detail/arch.hpp).
//
//     fq::llama::kernel_table k = fq::llama::best_kernels();   // or kernels_for("avx2")
#pragma once

#include <string_view>

#include "../detail/arch.hpp"
#include "simd.hpp"

FQ_DECLARE_ARCH_KERNELS(fq::llama::kernel_table);

namespace fq::llama {

/// The kernels of a named architecture (fq::detail::arch_names()); an error when the name is
/// unknown or the CPU lacks it.
inline kernel_table kernels_for(std::string_view arch) {
  return fq::detail::kernels_for<kernel_table>(arch, default_kernels);
}

/// The best kernels this CPU runs, unless the FQ_FORCE_ARCH environment variable names others.
inline kernel_table best_kernels() { return kernels_for(fq::detail::best_arch()); }

}  // namespace fq::llama
