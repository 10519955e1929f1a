// SPDX-License-Identifier: MIT
// The format kernels for avx512, compiled with that architecture's flags (examples/CMakeLists.txt).
#include <fakequant/format/kernels.hpp>

namespace fq::format::detail {
format_kernels format_kernels_avx512() noexcept { return make_format_kernels<xsimd::avx512bw>(); }
}  // namespace fq::format::detail
