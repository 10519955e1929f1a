// SPDX-License-Identifier: MIT
// Phase 4 of the plan (pipeline.hpp): the decision and the report, test1_summary.json and
// test1_summary.md.
#include <fmt/core.h>

#include "json_util.hpp"
#include "messages.hpp"
#include "pipeline.hpp"

namespace fqcli::pipeline {

nlohmann::json write_summary(const summary_input& in, const fs::path& results, bool print) {
  const auto& a = *in.args;
  const auto& e = *in.exp;
  auto must = in.must;
  const auto conv = in.conv ? in.conv->band : scenario::pessimistic;
  const auto pplb = in.ppl ? fq::plan::perplexity_band(in.ppl->increase()) : scenario::pessimistic;
  const auto out = fq::plan::decide(must, in.nums.band, conv, pplb);
  nlohmann::json summary{{"command", a.command_line},       {"name", e.name},
                         {"format", e.format.name},         {"tensors", e.tensors},
                         {"rounding", name_of(e.rounding)}, {"store", name_of(e.store)},
                         {"environment", in.environment},   {"verification", in.problems}};
  summary["numerical"] = {{"mean_rel_diff", in.nums.mean_rel},
                          {"max_rel_diff", in.nums.max_rel},
                          {"nan_or_inf", in.nums.nan_inf},
                          {"band", fq::plan::to_string(in.nums.band)}};
  if (in.conv)
    summary["conversation"] = {{"agreement", in.conv->agreement},
                               {"failures", in.conv->failures},
                               {"band", fq::plan::to_string(conv)}};
  if (in.ppl) {
    const auto& p = *in.ppl;
    summary["perplexity"] = {{"original", {p.ppl_a, p.err_a}},
                             {"fake", {p.ppl_b, p.err_b}},
                             {"increase", p.increase()},
                             {"increase_ci95", {p.ci95.lo, p.ci95.hi}},
                             {"increase_ci99", {p.ci99.lo, p.ci99.hi}},
                             {"interval_method", p.ci_method},
                             {"until_confident", a.until_confident},
                             {"chunks", p.chunks},
                             {"n_ctx", p.n_ctx},
                             {"band", fq::plan::to_string(pplb)}};
    summary["kld"] = {
        {"mean", p.kld_mean}, {"p99", p.kld_99}, {"max", p.kld_max}, {"same_top_p", p.same_top}};
  }
  summary["must_pass"] = {{"loads", must.loads},
                          {"inference", must.inference},
                          {"stable", must.stable},
                          {"format_correct", must.format_correct}};
  summary["scenario"] = fq::plan::to_string(out.overall);
  summary["decision"] = fq::plan::to_string(out.decision);
  if (!in.stopped_early.empty()) summary["stopped_early"] = in.stopped_early;

  // The report in the language asked for.
  const auto l = a.lang;
  auto word = [l](auto v) { return text(l, word_of(v)); };
  auto pass = [l](bool ok) { return text(l, ok ? msg::word_pass : msg::word_fail); };
  std::string md = text(l, msg::report_title, e.tensors, e.format.name);
  md += text(l, msg::report_decision, word(out.decision), word(out.overall));
  if (!in.stopped_early.empty()) md += text(l, msg::report_stopped_early, in.stopped_early);
  md += text(l, msg::must_pass_header);
  md += text(l, msg::must_pass_rows, pass(must.loads), pass(must.inference), pass(must.stable),
             pass(must.format_correct));
  md += text(l, msg::criteria_header);
  md += text(l, msg::numerical_row, 100 * in.nums.mean_rel, 100 * in.nums.max_rel,
             word(in.nums.band));
  if (in.conv)
    md += text(l, msg::conversation_row, in.conv->agreement, in.conv->failures, word(conv));
  if (in.ppl) {
    const auto& p = *in.ppl;
    md += text(l, msg::perplexity_row, 100 * p.increase(), 100 * p.ci95.lo, 100 * p.ci95.hi,
               word(pplb));
    md += text(l, msg::kld_line, p.kld_mean, p.kld_99, p.kld_max, 100 * p.same_top);
    if (p.increase() < 0 && p.kld_mean > 1e-3) md += text(l, msg::perplexity_understates);
  }
  write_text_file(results / "test1_summary.md", md);
  write_text_file(results / "test1_summary.json", dump(summary));
  if (print) fmt::print("{}", md);
  return summary;
}

}  // namespace fqcli::pipeline
