// SPDX-License-Identifier: MIT
// The evaluator's kernels for avx2, compiled with that architecture's flags
// (examples/CMakeLists.txt).
#include <fakequant/llama/simd.hpp>

namespace fq::llama::detail {
kernel_table kernels_avx2() noexcept { return make_kernels<xsimd::fma3<xsimd::avx2>>(); }
}  // namespace fq::llama::detail
