// SPDX-License-Identifier: MIT
// The avx512 kernel tables, compiled with -mavx512f/bw/dq/cd/vl -mavx2 -mfma -mf16c
// (cmake/fq_kernels.cmake).
#include "arch_kernels.hpp"

FQ_DEFINE_ARCH_KERNELS(avx512, xsimd::avx512bw, xsimd::avx512bw, xsimd::avx512bw)
