// SPDX-License-Identifier: MIT
#pragma once

// The kernels test NaN and Inf with integer operations and rely on IEEE semantics; -ffast-math
// silently breaks both (xsimd::isnan(NaN) is false under it).
#ifdef __FAST_MATH__
#error "fakequant requires IEEE floating point: do not compile with -ffast-math"
#endif

// Helpers reachable from per-architecture kernels must be inlined, or the linker may keep one
// architecture's copy of a weak symbol for all of them (ODR across arch translation units).
#if defined(__GNUC__) || defined(__clang__)
#define FQ_FORCE_INLINE inline __attribute__((always_inline))
#else
#define FQ_FORCE_INLINE inline
#endif

#define FQ_VERSION_MAJOR 0
#define FQ_VERSION_MINOR 1
#define FQ_VERSION_PATCH 0
