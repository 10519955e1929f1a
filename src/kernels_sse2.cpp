// SPDX-License-Identifier: MIT
// The sse2 tables of the three kernel families (format, stats, llama), compiled with no flags
// beyond x86-64's (cmake/fq_kernels.cmake); detail/arch.hpp declares them and chooses between them
// at run time. Only Arch-templated kernels and always-inlined helpers may be compiled here: a plain
// inline function would be emitted with these flags and could stand in for another unit's copy (the
// kernels.isolated test checks the objects for such symbols).
#include <fakequant/format/dispatch.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/stats/dispatch.hpp>

using fq::detail::arch_kernels;

fq::format::kernel_table arch_kernels<fq::format::kernel_table>::sse2() noexcept {
  return fq::format::make_kernels<xsimd::sse2>();
}
fq::stats::kernel_table arch_kernels<fq::stats::kernel_table>::sse2() noexcept {
  return fq::stats::make_kernels<xsimd::sse2>();
}
fq::llama::kernel_table arch_kernels<fq::llama::kernel_table>::sse2() noexcept {
  return fq::llama::make_kernels<xsimd::sse2>();
}
