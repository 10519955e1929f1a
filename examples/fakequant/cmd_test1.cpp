// SPDX-License-Identifier: MIT
// fakequant test1: the plan of ../shared/docs/test1-plan.md end to end — prepare (verified
// backup), fake-quantize and verify, evaluate (numerical analysis, loading and quick inference,
// conversation, perplexity with KL divergence), decide and report — with the built-in evaluator or
// the user's llama.cpp build. The phases live in pipeline.hpp, shared with fakequant sweep.
#include <fmt/core.h>

#include "cli.hpp"
#include "interrupt.hpp"
#include "json_util.hpp"
#include "llama_cpp_backend.hpp"
#include "messages.hpp"
#include "pipeline.hpp"

namespace fqcli {
namespace {

namespace fs = std::filesystem;
using namespace pipeline;

struct test1_args : common_args {
  std::string tensors = "blk.0.ffn_norm.weight", name = "layer0";
  fq::format::float_format format = fq::format::bf16;
  fq::store_policy store = fq::store_policy::same;
  bool stop_after_numerical = false;
  test1_args() { workdir = "fakequant-test1"; }
};

experiment experiment_of(const test1_args& a) {
  experiment e;
  e.name = a.name;
  e.tensors = a.tensors;
  e.format = a.format;
  e.store = a.store;
  return e;
}

// Phase 3's results; the built-in evaluator computes both with the models loaded once.
struct evaluation {
  conversation_result conv;
  perplexity_figures ppl;
};

evaluation evaluate_builtin(const test1_args& a, const prepared& p, const fq::gguf::file& fa,
                            const fq::gguf::file& fb, const quantized& q,
                            const fq::llama::tokenizer& tok, run_log& log) {
  evaluation ev;
  fq::llama::eval_options eo = p.ppl.eval;
  const auto ma = fq::llama::model::load(fa);
  const auto mb =
      log.step("load the fake-quantized model", [&] { return fq::llama::model::load(fb); });
  auto ga = builtin_generator(ma, tok, eo);
  auto gb = builtin_generator(mb, tok, eo);
  const auto oa = run_conversation(*ga, a.seed);
  const auto ob = log.step("quick inference and conversation tests",
                           [&] { return run_conversation(*gb, a.seed); });
  ev.conv = compare_conversation(oa, ob, a.seed);
  const auto tokens = perplexity_tokens(tok, p.text, p.ppl.n_ctx);
  ev.ppl = log.step("perplexity and KL divergence of both models", [&] {
    return builtin_perplexity(ma, {&mb}, tokens, p.ppl, a.until_confident).front();
  });
  ev.ppl.commands = builtin_perplexity_commands(a, p, q.fake);
  return ev;
}

conversation_result converse_llama_cpp(const test1_args& a, const prepared& p, const quantized& q,
                                       const fq::llama::tokenizer& tok, const fs::path& conv_file,
                                       run_log& log) {
  auto ga = llama_cpp_generator(a.llama_cpp_dir, p.original, tok, a.threads, conv_file);
  auto gb = llama_cpp_generator(a.llama_cpp_dir, q.fake, tok, a.threads, conv_file);
  const auto oa = log.step("llama-completion: loading, \"Hello\" -n 5, conversation (original)",
                           [&] { return run_conversation(*ga, a.seed); });
  const auto ob = log.step("llama-completion: loading, \"Hello\" -n 5, conversation (fake)",
                           [&] { return run_conversation(*gb, a.seed); });
  return compare_conversation(oa, ob, a.seed);
}

perplexity_figures perplexity_llama_cpp(const test1_args& a, const prepared& p, const quantized& q,
                                        const fs::path& ppl_file, run_log& log) {
  const auto base = log.step("llama-perplexity: the original (and its KL-divergence base)",
                             [&] { return llama_cpp_base(a, p, ppl_file); });
  return log.step("llama-perplexity --kl-divergence: the fake-quantized model",
                  [&] { return llama_cpp_kld(a, base, q.fake, ppl_file); });
}

// The report of an experiment stopped before the end, the reason in run.log.
void write_stop(const summary_input& in, const fs::path& results, run_log& log) {
  log.note(fmt::format("decision: STOP ({})", in.stopped_early));
  write_summary(in, results, true);
}

void run(const test1_args& a) {
  const auto e = experiment_of(a);
  // One run per work folder; bad inputs refused before anything is copied (interrupt.hpp,
  // preflight.hpp).
  const auto lock = lock_workdir(a.workdir);
  check_inputs(a, a.tensors);
  const fs::path results = fs::path(a.workdir) / "results" / a.name;
  auto log = start_log(results, "# fakequant test1 — " + a.command_line);

  // Phase 1: prepare. Phase 2: fake-quantize, verify, numerical analysis.
  auto p = prepare(a, log);
  const auto fa = fq::gguf::file::open(p.original.string());
  const auto q = quantize_and_analyse(fa, e, p.data, results, log);
  record_sha256(p, log);
  auto in = quantized_summary(a, e, q, p.environment);
  if (a.stop_after_numerical) {
    // For timing phases 1–2 (bench/test1_phases.sh): no evaluation, so no decision either.
    log.note("stopped after the numerical analysis (--stop-after numerical): no decision");
    return;
  }
  if (!in.stopped_early.empty()) return write_stop(in, results, log);

  // Phase 3: loading, quick inference, conversation; perplexity and KL divergence.
  const auto fb = fq::gguf::file::open(q.fake.string());
  const auto tok = fq::llama::tokenizer::from_file(fa);
  const auto conv_file = results / "conversation_tests.txt";
  const auto ppl_file = results / "perplexity_comparison.txt";
  evaluation ev;
  if (a.llama_cpp())
    ev.conv = converse_llama_cpp(a, p, q, tok, conv_file, log);
  else
    ev = evaluate_builtin(a, p, fa, fb, q, tok, log);
  write_text_file(conv_file, ev.conv.text);
  add_conversation(in, ev.conv);
  if (!ev.conv.loads) {
    in.stopped_early = std::string(text(a.lang, msg::fake_does_not_load));
    return write_stop(in, results, log);
  }
  if (a.llama_cpp()) ev.ppl = perplexity_llama_cpp(a, p, q, ppl_file, log);
  if (a.until_confident)
    log.note(fmt::format("  --until-confident: {} chunks, 99 % interval {:+.4f} … {:+.4f} %",
                         ev.ppl.chunks, 100 * ev.ppl.ci99.lo, 100 * ev.ppl.ci99.hi));
  write_text_file(ppl_file, perplexity_report(ev.ppl, a.until_confident));
  in.ppl = &ev.ppl;

  // Phase 4: decide and report.
  const auto summary = write_summary(in, results, true);
  log.note("decision: " + summary["decision"].get<std::string>());
}

}  // namespace

void register_test1(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "test1", "The test-1 plan end to end: prepare, fake-quantize, verify, evaluate, decide");
  auto a = std::make_shared<test1_args>();
  cmd->add_option("--model", a->model, "the original GGUF model (never written)");
  cmd->add_option("--text", a->text, "perplexity text (the plan: wiki.test.small.raw)");
  cmd->add_option("--workdir", a->workdir, "experiment folder (data/ and results/NAME/)");
  cmd->add_option("--tensors", a->tensors, "tensors to fake-quantize (names or globs)");
  // Parsed in the callback: an unknown format is an input error (exit status 1) reported after the
  // command line is complete, not a usage error.
  auto format = std::make_shared<std::string>("bf16");
  cmd->add_option("--format", *format, "target format");
  cmd->add_option("--name", a->name, "experiment name (results/NAME, fake_quant_NAME.gguf)");
  add_evaluation_options(*cmd, *a);
  cmd->add_option_function<std::string>(
         "--store", [a](const std::string& s) { a->store = parse_store(s); }, "same or f32")
      ->check(member_of(store_names));
  cmd->add_flag("--until-confident", a->until_confident,
                "stop the perplexity runs, after at least 4 chunks, once the 99 % interval of the "
                "increase lies in one band");
  cmd->add_flag("--no-early-stop", a->no_early_stop,
                "evaluate even when the numerical analysis says stop");
  cmd->add_option_function<std::string>(
         "--stop-after", [a](const std::string&) { a->stop_after_numerical = true; },
         "numerical: end after phases 1–2 and the numerical analysis, without a decision "
         "(for timing)")
      ->check(CLI::IsMember({"numerical"}));
  cmd->add_flag("--demo", a->demo,
                "a synthesized model and a built-in text: the whole pipeline in seconds");
  cmd->callback([a, format] {
    check_evaluation_options(*a);
    a->format = parse_format(*format);
    a->command_line = fmt::format(
        "fakequant test1 --model {} --text {} --workdir {} --tensors {} --format {} --name {} "
        "--ctx-size {} "
        "--batch-size {}{}{}{}",
        a->model.empty() ? "(demo)" : a->model, a->text.empty() ? "(demo)" : a->text, a->workdir,
        a->tensors, a->format.name, a->name, a->ctx, a->batch,
        a->chunks ? " --chunks " + std::to_string(a->chunks) : "", a->demo ? " --demo" : "",
        a->llama_cpp() ? " --backend llama.cpp --llama-cpp-dir " + a->llama_cpp_dir : "");
    run(*a);
  });
}

}  // namespace fqcli
