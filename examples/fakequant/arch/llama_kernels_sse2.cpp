// SPDX-License-Identifier: MIT
// The evaluator's kernels for sse2, compiled with that architecture's flags
// (examples/CMakeLists.txt).
#include <fakequant/llama/simd.hpp>

namespace fq::llama::detail {
kernel_table kernels_sse2() noexcept { return make_kernels<xsimd::sse2>(); }
}  // namespace fq::llama::detail
