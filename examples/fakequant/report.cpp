// SPDX-License-Identifier: MIT
// Phase 4 of the plan (pipeline.hpp): the decision and the report, test1_summary.json and
// test1_summary.md.
#include <fmt/core.h>

#include "json_util.hpp"
#include "messages.hpp"
#include "pipeline.hpp"

namespace fqcli::pipeline {

namespace {

// The plan's bands of each criterion (a criterion not evaluated counts as pessimistic) and the
// decision they lead to.
struct judged {
  scenario conv, ppl;
  fq::plan::outcome out;
};

judged judge(const summary_input& in) {
  judged j;
  j.conv = in.conv ? in.conv->band : scenario::pessimistic;
  j.ppl = in.ppl ? fq::plan::perplexity_band(in.ppl->increase()) : scenario::pessimistic;
  j.out = fq::plan::decide(in.must, in.nums.band, j.conv, j.ppl);
  return j;
}

nlohmann::json perplexity_json(const perplexity_figures& p, bool until_confident, scenario band) {
  return {{"original", {p.ppl_a, p.err_a}},
          {"fake", {p.ppl_b, p.err_b}},
          {"increase", p.increase()},
          {"increase_ci95", {p.ci95.lo, p.ci95.hi}},
          {"increase_ci99", {p.ci99.lo, p.ci99.hi}},
          {"interval_method", p.ci_method},
          {"until_confident", until_confident},
          {"chunks", p.chunks},
          {"n_ctx", p.n_ctx},
          {"band", fq::plan::to_string(band)}};
}

nlohmann::json summary_json(const summary_input& in, const judged& j) {
  const auto& a = *in.args;
  const auto& e = *in.exp;
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
                               {"band", fq::plan::to_string(j.conv)}};
  if (in.ppl) {
    const auto& p = *in.ppl;
    summary["perplexity"] = perplexity_json(p, a.until_confident, j.ppl);
    summary["kld"] = {
        {"mean", p.kld_mean}, {"p99", p.kld_99}, {"max", p.kld_max}, {"same_top_p", p.same_top}};
  }
  summary["must_pass"] = {{"loads", in.must.loads},
                          {"inference", in.must.inference},
                          {"stable", in.must.stable},
                          {"format_correct", in.must.format_correct}};
  summary["scenario"] = fq::plan::to_string(j.out.overall);
  summary["decision"] = fq::plan::to_string(j.out.decision);
  if (!in.stopped_early.empty()) summary["stopped_early"] = in.stopped_early;
  return summary;
}

// test1_summary.md in the language asked for.
std::string summary_markdown(const summary_input& in, const judged& j) {
  const auto l = in.args->lang;
  const auto& must = in.must;
  auto word = [l](auto v) { return text(l, word_of(v)); };
  auto pass = [l](bool ok) { return text(l, ok ? msg::word_pass : msg::word_fail); };
  std::string md = text(l, msg::report_title, in.exp->tensors, in.exp->format.name);
  md += text(l, msg::report_decision, word(j.out.decision), word(j.out.overall));
  if (!in.stopped_early.empty()) md += text(l, msg::report_stopped_early, in.stopped_early);
  md += text(l, msg::must_pass_header);
  md += text(l, msg::must_pass_rows, pass(must.loads), pass(must.inference), pass(must.stable),
             pass(must.format_correct));
  md += text(l, msg::criteria_header);
  md += text(l, msg::numerical_row, 100 * in.nums.mean_rel, 100 * in.nums.max_rel,
             word(in.nums.band));
  if (in.conv)
    md += text(l, msg::conversation_row, in.conv->agreement, in.conv->failures, word(j.conv));
  if (in.ppl) {
    const auto& p = *in.ppl;
    md += text(l, msg::perplexity_row, 100 * p.increase(), 100 * p.ci95.lo, 100 * p.ci95.hi,
               word(j.ppl));
    md += text(l, msg::kld_line, p.kld_mean, p.kld_99, p.kld_max, 100 * p.same_top);
    if (p.increase() < 0 && p.kld_mean > 1e-3) md += text(l, msg::perplexity_understates);
  }
  return md;
}

}  // namespace

summary_input quantized_summary(const common_args& a, const experiment& e, const quantized& q,
                                const nlohmann::json& environment) {
  summary_input in;
  in.args = &a;
  in.exp = &e;
  in.nums = q.nums;
  in.must.format_correct = q.problems.empty();
  in.must.stable = !q.nums.nan_inf;
  in.problems = q.problems;
  in.environment = environment;
  in.stopped_early = early_stop_reason(a, q);
  return in;
}

void add_conversation(summary_input& in, const conversation_result& c) {
  in.conv = &c;
  in.must.loads = c.loads;
  in.must.inference = c.inference;
}

nlohmann::json write_summary(const summary_input& in, const fs::path& results, bool print) {
  const auto j = judge(in);
  const auto summary = summary_json(in, j);
  const auto md = summary_markdown(in, j);
  write_text_file(results / "test1_summary.md", md);
  write_text_file(results / "test1_summary.json", dump(summary));
  if (print) fmt::print("{}", md);
  return summary;
}

}  // namespace fqcli::pipeline
