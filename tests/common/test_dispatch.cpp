// SPDX-License-Identifier: MIT
// One dispatch design for the three kernel families (detail/arch.hpp): the same names, the same
// choice, and options that never throw when built (a bad FQ_FORCE_ARCH is reported by the call
// that needs kernels).
#include <cstdlib>
#include <fakequant/format/dispatch.hpp>
#include <fakequant/llama/context.hpp>
#include <fakequant/quantize.hpp>
#include <fakequant/stats/paired.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

TEST_CASE("dispatch: the three kernel families choose the same instruction set") {
  ::unsetenv("FQ_FORCE_ARCH");
  const std::string best = fq::detail::best_arch();
  CHECK(fq::detail::cpu_has_arch(best));
  for (std::string_view name : fq::detail::arch_list) {
    if (!fq::detail::cpu_has_arch(name)) continue;
    CAPTURE(std::string(name));
    // Each family's table for a name is made for that name's instruction set (xsimd's names,
    // e.g. avx512bw for avx512, fma3<avx2> or avx2 for avx2; default: what this unit's flags
    // allow).
    const std::string f = fq::format::kernels_for(name).name, s = fq::stats::kernels_for(name).name,
                      l = fq::llama::kernels_for(name).name;
    if (name == "default") {
      CHECK(f == fq::format::default_kernels().name);
      CHECK(s == fq::stats::default_kernels().name);
      CHECK(l == fq::llama::default_kernels().name);
    } else {
      const std::string tag(name);
      CHECK(f.find(tag) != std::string::npos);
      CHECK(s.find(tag) != std::string::npos);
      CHECK(l.find(tag) != std::string::npos);
    }
  }
  CHECK(std::string(fq::format::best_kernels().name) == fq::format::kernels_for(best).name);
  CHECK(std::string(fq::stats::best_kernels().name) == fq::stats::kernels_for(best).name);
  CHECK(std::string(fq::llama::best_kernels().name) == fq::llama::kernels_for(best).name);
}

TEST_CASE("dispatch: options never throw when built, the call reports a bad FQ_FORCE_ARCH") {
  ::setenv("FQ_FORCE_ARCH", "avx9", 1);
  const auto build_options = [] {
    return std::tuple{fq::quantize_options{}, fq::stats::paired_options{},
                      fq::llama::eval_options{}};
  };
  CHECK_NOTHROW((void)build_options());
  const std::vector<float> a{1.0f, 2.0f}, b{1.0f, 2.5f};
  CHECK_THROWS_WITH_AS(fq::stats::compare(a, b), doctest::Contains("'avx9'"), fq::error);
  // Kernels given explicitly do not consult the environment.
  CHECK(fq::stats::compare(a, b, {.kernels = fq::stats::kernels_for("default")}).changed == 1);
  ::unsetenv("FQ_FORCE_ARCH");
  CHECK(fq::stats::compare(a, b).changed == 1);
}
