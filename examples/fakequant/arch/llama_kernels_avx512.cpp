// SPDX-License-Identifier: MIT
// The evaluator's kernels for avx512, compiled with that architecture's flags
// (examples/CMakeLists.txt).
#include <fakequant/llama/simd.hpp>

namespace fq::llama::detail {
kernel_table kernels_avx512() noexcept { return make_kernels<xsimd::avx512bw>(); }
}  // namespace fq::llama::detail
