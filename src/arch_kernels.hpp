// SPDX-License-Identifier: MIT
// What each src/kernels_<arch>.cpp defines: one instruction set's tables of the three kernel
// families (format, stats, llama), declared in detail/arch.hpp and chosen between at run time.
// Only Arch-templated kernels and always-inlined helpers may be compiled there: a plain inline
// function would be emitted with that unit's flags and could stand in for another unit's copy (the
// package.kernels_isolated test checks the objects for such symbols).
#pragma once

#include <fakequant/format/dispatch.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/stats/dispatch.hpp>

/// Defines fq::detail::arch_kernels<T>::NAME() of every family, each with the xsimd architecture
/// that family uses for NAME.
#define FQ_DEFINE_ARCH_KERNELS(NAME, FORMAT_ARCH, STATS_ARCH, LLAMA_ARCH)                        \
  fq::format::kernel_table fq::detail::arch_kernels<fq::format::kernel_table>::NAME() noexcept { \
    return fq::format::make_kernels<FORMAT_ARCH>();                                              \
  }                                                                                              \
  fq::stats::kernel_table fq::detail::arch_kernels<fq::stats::kernel_table>::NAME() noexcept {   \
    return fq::stats::make_kernels<STATS_ARCH>();                                                \
  }                                                                                              \
  fq::llama::kernel_table fq::detail::arch_kernels<fq::llama::kernel_table>::NAME() noexcept {   \
    return fq::llama::make_kernels<LLAMA_ARCH>();                                                \
  }
