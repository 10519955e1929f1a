// SPDX-License-Identifier: MIT
// The format kernels for avx2, compiled with that architecture's flags (examples/CMakeLists.txt).
#include <fakequant/format/kernels.hpp>

namespace fq::format::detail {
format_kernels format_kernels_avx2() noexcept { return make_format_kernels<xsimd::avx2>(); }
}  // namespace fq::format::detail
