// SPDX-License-Identifier: MIT
// The sse2 kernel tables, compiled with x86-64's baseline flags (cmake/fq_kernels.cmake).
#include "arch_kernels.hpp"

FQ_DEFINE_ARCH_KERNELS(sse2, xsimd::sse2, xsimd::sse2, xsimd::sse2)
