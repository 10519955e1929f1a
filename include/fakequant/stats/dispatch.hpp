// SPDX-License-Identifier: MIT
// Run-time choice of the paired reducer's kernels: the same design as format/ and
// llama/dispatch.hpp (the names, the CPU check and FQ_FORCE_ARCH in detail/arch.hpp).
//
//     fq::stats::kernel_table k = fq::stats::best_kernels();   // or kernels_for("avx2")
#pragma once

#include <string_view>

#include "../detail/arch.hpp"
#include "paired_kernels.hpp"

FQ_DECLARE_ARCH_KERNELS(fq::stats::kernel_table);

namespace fq::stats {

/// The kernels of a named architecture (fq::detail::arch_names()); an error when the name is
/// unknown or the CPU lacks it.
inline kernel_table kernels_for(std::string_view arch) {
  return fq::detail::kernels_for<kernel_table>(arch, default_kernels);
}

/// The best kernels this CPU runs, unless the FQ_FORCE_ARCH environment variable names others.
inline kernel_table best_kernels() { return kernels_for(fq::detail::best_arch()); }

}  // namespace fq::stats
