// SPDX-License-Identifier: MIT
// Prints the statistics of fixed adversarial and realistic inputs as JSON. Built once per x86
// instruction set (tests/stats/CMakeLists.txt); the outputs must be byte-identical. The paired
// statistics come from the program's dispatched kernel of that instruction set (stats/dispatch.hpp,
// the examples' arch/ units), and must equal those of this build's own default-arch kernel.
#include <cstdio>
#include <cstdlib>
#include <fakequant/detail/arch.hpp>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/json.hpp>
#include <fakequant/stats/paired.hpp>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

fq::stats::kernel_table kernel;  // the dispatched one named on the command line

nlohmann::json case_json(std::vector<float> a, std::vector<float> b, unsigned threads) {
  fq::stats::tensor_diff t;
  t.name = "case";
  t.paired = fq::stats::compare(a, b, {.threads = threads, .kernels = kernel});
  fq::stats::tensor_diff own = t;
  own.paired = fq::stats::compare(a, b, {.threads = threads});
  if (fq::stats::to_json(own).dump() != fq::stats::to_json(t).dump()) {
    std::fprintf(stderr, "the dispatched %s kernel and this build's %s kernel disagree\n",
                 kernel.name, xsimd::default_arch::name());
    std::exit(1);
  }
  t.distribution = fq::stats::compare_distributions(std::move(a), std::move(b), 32);
  return fq::stats::to_json(t);
}

}  // namespace

int main(int argc, char** argv) {
  // Before any vector code of this build runs: a CPU without the instruction set skips.
  if (argc > 1 && !fq::detail::cpu_has_arch(argv[1])) {
    std::puts("SKIP");
    return 0;
  }
  kernel = fq::stats::kernels_for(argc > 1 ? argv[1] : "default");
  std::mt19937_64 rng(12);
  std::student_t_distribution<float> t(5);
  std::uniform_real_distribution<double> e(std::log(1e-30), std::log(1e30));
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 255u, 257u, 4099u, 3000000u}) {
    std::vector<float> a(n), b(n), w(n), v(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = 0.02f * t(rng);
      b[i] = std::round(a[i] * 400.0f) / 400.0f;
      w[i] = static_cast<float>((rng() & 1 ? 1 : -1) * std::exp(e(rng)));
      v[i] = w[i] * (1.0f + 1e-3f * static_cast<float>(rng() % 5));
    }
    if (n > 300) {
      a[100] = std::numeric_limits<float>::quiet_NaN();
      b[200] = -std::numeric_limits<float>::infinity();
      a[250] = std::numeric_limits<float>::denorm_min();
    }
    for (unsigned th : {1u, 2u, 4u}) {
      out.push_back(case_json(a, b, th));
      out.push_back(case_json(w, v, th));
    }
  }
  out.push_back(case_json({1e30f, 1.0f, -1e30f}, {1e30f, 0.0f, -1e30f}, 1));
  std::printf("%s\n", out.dump(1).c_str());
  std::fprintf(stderr, "%s build, %s kernel\n", xsimd::default_arch::name(), kernel.name);
}
