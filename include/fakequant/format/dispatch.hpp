// SPDX-License-Identifier: MIT
// Run-time choice of the format kernels: the same design as stats/ and llama/dispatch.hpp (the
// names, the CPU check and FQ_FORCE_ARCH in detail/arch.hpp).
//
//     fq::format::kernel_table k = fq::format::best_kernels();   // or kernels_for("avx2")
#pragma once

#include <string_view>

#include "../detail/arch.hpp"
#include "kernels.hpp"

FQ_DECLARE_ARCH_KERNELS(fq::format::kernel_table);

namespace fq::format {

/// The kernels of a named architecture (fq::detail::arch_names()); an error when the name is
/// unknown or the CPU lacks it.
inline kernel_table kernels_for(std::string_view arch) {
  return fq::detail::kernels_for<kernel_table>(arch, default_kernels);
}

/// The best kernels this CPU runs, unless the FQ_FORCE_ARCH environment variable names others.
inline kernel_table best_kernels() { return kernels_for(fq::detail::best_arch()); }

}  // namespace fq::format
