// SPDX-License-Identifier: MIT
// The avx2 kernel tables, compiled with -mavx2 -mfma -mf16c (cmake/fq_kernels.cmake); the format
// kernels keep xsimd's plain avx2 tag, the others its fma3<avx2> (the bits each was tested with).
#include "arch_kernels.hpp"

FQ_DEFINE_ARCH_KERNELS(avx2, xsimd::avx2, xsimd::fma3<xsimd::avx2>, xsimd::fma3<xsimd::avx2>)
