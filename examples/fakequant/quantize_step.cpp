// SPDX-License-Identifier: MIT
// Phase 2 of the plan and the numerical analysis (pipeline.hpp): one experiment fake-quantized,
// verified and compared with the original tensor by tensor.
#include <fmt/core.h>
#include <unistd.h>

#include <fakequant/stats/diff.hpp>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/json.hpp>
#include <fakequant/stats/svg.hpp>
#include <future>

#include "json_util.hpp"
#include "messages.hpp"
#include "pipeline.hpp"

namespace fqcli::pipeline {

fq::quantize_options quantize_options_of(const experiment& e) {
  fq::quantize_options qo;
  qo.format = e.format;
  qo.rounding.rounding = e.rounding;
  qo.rounding.overflow = e.overflow.value_or(e.format.default_overflow());
  qo.scale = e.scale;
  qo.store = e.store;
  return qo;
}

quantized quantize_and_analyse(const fq::gguf::file& fa, const experiment& e, const fs::path& data,
                               const fs::path& results, run_log& log) {
  quantized q;
  q.fake = data / ("fake_quant_" + e.name + ".gguf");
  const auto qo = quantize_options_of(e);
  const auto patterns = fq::gguf::split_patterns(e.tensors);
  // An earlier run's output is moved aside and deleted on another thread while the new one is
  // written: freeing 2 GB of blocks keeps ext4 busy for about half a second. The aside name carries
  // the temporary marker, so an interrupted run's next start removes it.
  std::future<void> retired;
  if (fs::exists(q.fake)) {
    const auto aside =
        data / ("." + q.fake.filename().string() + std::string(fq::atomic_file::temp_marker) +
                "old-" + std::to_string(::getpid()));
    fs::rename(q.fake, aside);
    retired = std::async(std::launch::async, [aside] {
      std::error_code ec;
      fs::remove(aside, ec);
    });
  }
  log.step("fake-quantize " + e.tensors + " to " + std::string(e.format.name), [&] {
    auto b = fq::gguf::builder::from(fa);
    (void)fq::fake_quantize_tensors(fa, b, patterns, qo);
    b.write(q.fake);
  });
  const auto fb = fq::gguf::file::open(q.fake.string());
  log.step("verify " + q.fake.filename().string(), [&] {
    q.problems = fq::verify_fake_quantized(fa, fb, patterns, qo);
    for (const auto& p : q.problems) log.note("  verify: " + p);
  });
  const auto report = log.step("numerical analysis", [&] {
    fq::stats::diff_options d;
    d.tensors = e.tensors;
    d.kernels = fq::stats::best_kernels();  // as `fakequant diff`: the CPU's best, same bits
    return fq::stats::diff_files(fa, fb, d);
  });
  fs::create_directories(results / "svg");
  write_text_file(results / "numerical_analysis.json", dump(fq::stats::to_json(report)));
  for (const auto& t : report.tensors)
    write_text_file(results / "svg" / (t.name + ".svg"), fq::stats::to_svg(t));
  for (const auto& t : report.tensors) {
    q.nums.mean_rel = std::max(q.nums.mean_rel, t.paired.mean_rel_diff);
    q.nums.max_rel = std::max(q.nums.max_rel, t.paired.max_rel_diff);
    q.nums.nan_inf |= t.paired.nan_b + t.paired.inf_b > 0;
  }
  q.nums.band = fq::plan::numerical_band(q.nums.mean_rel, q.nums.max_rel, q.nums.nan_inf);
  return q;
}

std::string early_stop_reason(const common_args& a, const quantized& q) {
  if (!q.problems.empty()) return std::string(text(a.lang, msg::verification_failed));
  if (q.nums.band == scenario::pessimistic && !a.no_early_stop)
    return std::string(text(a.lang, msg::numerical_too_large));
  return {};
}

}  // namespace fqcli::pipeline
