// SPDX-License-Identifier: MIT
// The SIMD architecture this build of the tests runs. The NEON job (scripts/ci/neon.sh) sets
// FQ_EXPECT_ARCH=arm64+neon, so a cross build that fell back to scalar code fails there.
#include <cstdlib>
#include <fakequant/format/kernels.hpp>
#include <string>
#include <xsimd/xsimd.hpp>

#include "support.hpp"

TEST_CASE("format: the SIMD architecture of this build") {
  const std::string arch = xsimd::default_arch::name();
  const std::string kernels = fq::format::default_kernels().name;
  MESSAGE("xsimd default architecture: " << arch << ", default format kernels: " << kernels);
  CHECK(kernels == arch);
  if (const char* want = std::getenv("FQ_EXPECT_ARCH")) {
    CHECK(arch == want);
    CHECK(kernels == want);
  }
}
