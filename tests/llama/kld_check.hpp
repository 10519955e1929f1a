// SPDX-License-Identifier: MIT
// The figures of llama-perplexity --kl-divergence in its printed units, from this evaluator, from
// llama.cpp's log or from the reference JSON, and which of them two sets disagree on: the check of
// the evaluator against llama.cpp, and of a tolerance against the distance to another model.
#pragma once

#include <cmath>
#include <fakequant/llama/kld.hpp>
#include <fakequant/llama_cpp/logs.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace fq_test {

struct kld_figures {
  double ppl_q = 0, ppl_base = 0, kld = 0, kld_max = 0, kld_99 = 0;
  double rms_dp = 0, same_top = 0;  ///< percent, as llama.cpp prints them
};

inline kld_figures figures_of(const fq::llama::kld_result& k) {
  return {k.ppl_q, k.ppl_base, k.kld_mean, k.kld_max, k.kld_99, 100 * k.rms_dp, 100 * k.same_top};
}

/// `fakequant perplexity --kl-divergence --json`'s "kl_divergence" object.
inline kld_figures figures_of_program(const nlohmann::json& j) {
  return {j["ppl_q"][0].get<double>(),
          j["ppl_base"][0].get<double>(),
          j["kld_mean"][0].get<double>(),
          j["kld_percentiles"]["max"].get<double>(),
          j["kld_percentiles"]["99"].get<double>(),
          100 * j["rms_delta_p"][0].get<double>(),
          100 * j["same_top_p"][0].get<double>()};
}

/// An entry of the reference JSON's kld_c256_chunks20.
inline kld_figures figures_of_reference(const nlohmann::json& j) {
  return {j["Mean PPL(Q)"][0].get<double>(), j["Mean PPL(base)"][0].get<double>(),
          j["Mean    KLD"][0].get<double>(), j["Maximum KLD"][0].get<double>(),
          j["99.0%   KLD"][0].get<double>(), j["RMS \u0394p"][0].get<double>(),
          j["Same top p"][0].get<double>()};
}

inline kld_figures figures_of(const fq::llama_cpp::kld_log& l) {
  return {l.ppl_q.value().value,   l.ppl_base.value().value, l.kld_mean.value().value,
          l.kld_at(100).value(),   l.kld_at(99).value(),     l.rms_dp.value().value,
          l.same_top.value().value};
}

/// How far a figure may be from the reference's.
struct kld_tolerance {
  double ppl_q;     ///< relative
  double ppl_base;  ///< relative
  double kld;       ///< absolute
  double kld_tail;  ///< relative, maximum and 99th percentile
  double rms_dp;    ///< percentage points
  int same_top;     ///< tokens
};

/// The figures of `got` outside `t` of `want` ("" when all agree). `count`: scored tokens.
inline std::string differing(const kld_figures& got, const kld_figures& want,
                             const kld_tolerance& t, std::size_t count) {
  std::ostringstream out;
  out.precision(9);
  auto off = [&](const char* name, double a, double b, double d, double tol) {
    if (!(d <= tol)) out << name << " " << a << " vs " << b << " (" << d << " > " << tol << "); ";
  };
  off("PPL(Q)", got.ppl_q, want.ppl_q, std::abs(got.ppl_q / want.ppl_q - 1), t.ppl_q);
  off("PPL(base)", got.ppl_base, want.ppl_base, std::abs(got.ppl_base / want.ppl_base - 1),
      t.ppl_base);
  off("KLD", got.kld, want.kld, std::abs(got.kld - want.kld), t.kld);
  off("max KLD", got.kld_max, want.kld_max, std::abs(got.kld_max / want.kld_max - 1), t.kld_tail);
  off("99% KLD", got.kld_99, want.kld_99, std::abs(got.kld_99 / want.kld_99 - 1), t.kld_tail);
  off("RMS dp", got.rms_dp, want.rms_dp, std::abs(got.rms_dp - want.rms_dp), t.rms_dp);
  // Whole tokens: the printed percentage carries 3 decimals, far below one token here.
  off("same top (tokens)", got.same_top, want.same_top,
      std::round(std::abs(got.same_top - want.same_top) / 100 * static_cast<double>(count)),
      t.same_top);
  return out.str();
}

}  // namespace fq_test
