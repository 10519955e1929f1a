// SPDX-License-Identifier: MIT
// The paired reducer's kernel for avx2, compiled with that architecture's flags
// (examples/CMakeLists.txt). Only the Arch-templated kernel and always-inlined helpers are used
// here, so no inline function compiled with these flags can stand in for another unit's copy.
#include <fakequant/stats/dispatch.hpp>

namespace fq::stats::detail {
paired_kernel paired_kernel_avx2() noexcept {
  return make_paired_kernel<xsimd::fma3<xsimd::avx2>>();
}
}  // namespace fq::stats::detail
