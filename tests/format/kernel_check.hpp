// SPDX-License-Identifier: MIT
// Shared by the kernel tests and the exhaustive sweep: the combinations to check, the kernels this
// CPU runs, the strided input set, and bit-for-bit comparison with the scalar reference.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <fakequant/format/dispatch.hpp>
#include <fakequant/format/float_format.hpp>
#include <string>
#include <vector>

namespace fq_test {

/// One combination of format and options.
struct combo {
  fq::format::float_format format;
  fq::format::round_options options;
  std::string name() const {
    using namespace fq::format;
    const auto& o = options;
    std::string s(format.name);
    s += o.rounding == rounding::nearest_even   ? " nearest-even"
         : o.rounding == rounding::toward_zero  ? " toward-zero"
         : o.rounding == rounding::nearest_away ? " nearest-away"
                                                : " stochastic";
    s += o.overflow == overflow::saturate       ? " saturate"
         : o.overflow == overflow::saturate_inf ? " saturate-inf"
                                                : " ieee";
    if (o.flush_input_subnormals) s += " flush-in";
    if (o.flush_output_subnormals) s += " flush-out";
    return s;
  }
};

/// Every valid rounding (but stochastic) × overflow policy of `f`.
inline std::vector<combo> combos_of(const fq::format::float_format& f) {
  using namespace fq::format;
  std::vector<combo> out;
  for (auto r : {rounding::nearest_even, rounding::toward_zero, rounding::nearest_away})
    for (auto o : {overflow::saturate, overflow::saturate_inf, overflow::ieee}) {
      round_options opt;
      opt.rounding = r;
      opt.overflow = o;
      if (f.enc == encoding::finite && o != overflow::saturate) continue;  // refused
      out.push_back({f, opt});
    }
  return out;
}

/// The kernels of every architecture this CPU runs, best first.
inline std::vector<fq::format::kernel_table> cpu_kernels() {
  std::vector<fq::format::kernel_table> out;
#if defined(__x86_64__) || defined(_M_X64)
  for (const char* n : {"avx512", "avx2", "sse2"})
    if (fq::detail::cpu_has_arch(n)) out.push_back(fq::format::kernels_for(n));
#else
  out.push_back(fq::format::kernels_for("default"));
#endif
  return out;
}

/// Equal bits, or both NaN.
inline bool same_result(float a, float b) noexcept {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b) ||
         (std::isnan(a) && std::isnan(b));
}

/// The strided sweep's inputs for format `f` (both signs): 2^24 float32 bit patterns spread
/// evenly over all 2^32 (a stride of 256 with a varying low byte), and in every float32 binade
/// every rounding boundary of the format's grid there (at most 1024 per binade, evenly chosen)
/// with the patterns from two below the boundary to two above it, around both the representable
/// values and the midpoints between them.
inline std::vector<std::uint32_t> strided_inputs(const fq::format::float_format& f) {
  std::vector<std::uint32_t> v;
  v.reserve((std::size_t{1} << 24) + (std::size_t{1} << 23));
  for (std::uint32_t i = 0; i < (1u << 24); ++i) {
    std::uint32_t h = i * 0x9e3779b9u;
    h ^= h >> 16;
    v.push_back(i << 8 | (h & 0xffu));
  }
  const int emin_b = f.min_exp() + 127, d0 = 23 - f.man_bits;
  for (std::uint32_t sign : {0u, 0x80000000u})
    for (int e = 0; e < 256; ++e) {
      // Spacing of the format's grid in this binade, in float32 bit steps.
      const int lift = emin_b - (e > 0 ? e : 1);
      const int d = d0 + (lift > 0 ? lift : 0);
      const std::uint32_t base = sign | static_cast<std::uint32_t>(e) << 23;
      if (d >= 24) {  // the whole binade is below the smallest subnormal: its half is the boundary
        const float half = std::ldexp(1.0f, f.min_exp() - f.man_bits - 1);
        const std::uint32_t hb = std::bit_cast<std::uint32_t>(half);
        for (int k = -2; k <= 2; ++k) v.push_back(sign | (hb + static_cast<std::uint32_t>(k)));
        continue;
      }
      const std::uint32_t step = 1u << d, count = 1u << (23 - d);
      const std::uint32_t stride = count > 1024 ? count / 1024 : 1;
      for (std::uint32_t j = 0; j < count; j += stride)
        for (std::uint32_t at : {j * step, j * step + step / 2})
          for (int k = -2; k <= 2; ++k) {
            const std::int64_t m = static_cast<std::int64_t>(at) + k;
            if (m >= 0 && m < (1 << 23)) v.push_back(base | static_cast<std::uint32_t>(m));
          }
    }
  return v;
}

}  // namespace fq_test
