// SPDX-License-Identifier: MIT
// The phases of the test-1 plan (../shared/docs/test1-plan.md) as functions, shared by
// `fakequant test1` (one experiment) and `fakequant sweep` (tests 2–4: several experiments against
// one evaluation of the original): prepare, fake-quantize and verify, numerical analysis,
// conversation, perplexity with KL divergence, decision and report. Two evaluation backends: the
// built-in evaluator and the user's llama.cpp build (llama_cpp_backend.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/context.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/model.hpp>
#include <fakequant/llama/perplexity.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fakequant/plan/decision.hpp>
#include <fakequant/quantize.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "options.hpp"

namespace fqcli::pipeline {

namespace fs = std::filesystem;
using fq::plan::scenario;

/// Every step with its command, duration and result, appended as it happens.
class run_log {
 public:
  explicit run_log(fs::path p);
  template <class F>
  auto step(const std::string& what, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    begin(what);
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        done(what, t0, "ok");
      } else {
        auto r = f();
        done(what, t0, "ok");
        return r;
      }
    } catch (const std::exception& e) {
      done(what, t0, std::string("FAILED: ") + e.what());
      throw;
    }
  }
  void note(const std::string& line);

 private:
  void begin(const std::string& what);
  void done(const std::string& what, std::chrono::steady_clock::time_point t0,
            const std::string& result);
  fs::path path_;
  std::ofstream out_;
};

std::string read_file(const fs::path& p);

/// `folder` created, its run.log opened and headed with `heading`.
run_log start_log(const fs::path& folder, const std::string& heading);

/// Settings shared by test1 and sweep.
struct common_args {
  std::string model, text, workdir, llama_cpp_dir;
  fqcli::backend backend = fqcli::backend::builtin;
  language lang = language::en;
  std::size_t threads = 0, ctx = 512, batch = 8, chunks = 0;
  std::uint64_t seed = 42;
  bool demo = false, no_early_stop = false, until_confident = false;
  std::string command_line;
  bool llama_cpp() const { return backend == fqcli::backend::llama_cpp; }
};

/// The options test1 and sweep share: --backend, --llama-cpp-dir, --threads, --ctx-size,
/// --batch-size, --chunks, --seed, --lang.
void add_evaluation_options(CLI::App& cmd, common_args& a);
/// The inputs of an experiment on `tensors` checked before anything is copied (preflight.hpp);
/// with --demo standing in for the model or the text, nothing to check.
void check_inputs(const common_args& a, const std::string& tensors);
/// A usage error for evaluation options that do not go together.
void check_evaluation_options(const common_args& a);

/// One fake-quantization experiment (a line of a sweep's experiments file).
struct experiment {
  std::string name, tensors;
  fq::format::float_format format = fq::format::bf16;
  fq::format::rounding rounding = fq::format::rounding::nearest_even;
  std::optional<fq::format::overflow> overflow;  ///< unset: the format's default
  fq::format::scaling scale;
  fq::store_policy store = fq::store_policy::same;
};

/// The quantize options of an experiment.
fq::quantize_options quantize_options_of(const experiment& e);

/// Phase 1: the verified backup of the original, the text beside it, the environment.
struct prepared {
  fs::path data, original, text;
  fq::llama::perplexity_options ppl;
  nlohmann::json environment;
  std::shared_future<std::string> sha256;  ///< of the original, being computed
  bool sha256_recorded = false;            ///< taken from an earlier run's record
};
prepared prepare(const common_args& a, run_log& log);
/// Waits for the original's SHA-256 and records it: run.log, environment.original_sha256, and
/// DATA/original_model.gguf.sha256 in sha256sum's format.
void record_sha256(prepared& p, run_log& log);

/// Phase 2 and the numerical analysis of one experiment.
struct numerical {
  double mean_rel = 0, max_rel = 0;
  bool nan_inf = false;
  scenario band = scenario::optimistic;
};
struct quantized {
  fs::path fake;
  std::vector<std::string> problems;  ///< verification failures
  numerical nums;
};
quantized quantize_and_analyse(const fq::gguf::file& original, const experiment& e,
                               const fs::path& data, const fs::path& results, run_log& log);

/// One generated text: its token ids (the evaluator's, or the text re-tokenized for llama.cpp).
struct completion {
  std::string text;
  std::vector<std::int32_t> ids;
  bool loaded = true, finite = true;
};

/// A model under one backend, for the loading, quick-inference and conversation tests.
class generator {
 public:
  virtual ~generator() = default;
  virtual completion complete(const std::string& prompt, std::size_t n, float temp,
                              std::uint64_t seed) = 0;
  /// The multi-turn chat, greedy, `n` tokens per answer, the conversation kept in context.
  virtual std::vector<completion> chat(const std::vector<std::string>& turns, std::size_t n) = 0;
  /// Raw tool output to keep in conversation_tests.txt (llama.cpp), empty for the evaluator.
  virtual std::string raw() const { return {}; }
};

/// The built-in evaluator's generator (the model and tokenizer must outlive it).
std::unique_ptr<generator> builtin_generator(const fq::llama::model& m,
                                             const fq::llama::tokenizer& tok,
                                             const fq::llama::eval_options& eo);

/// Every generation the plan asks of one model: "Hello" -n 5, the three prompts sampled and
/// greedy, the three-turn chat.
struct conversation_outputs {
  completion hello;
  std::vector<completion> sampled, greedy, chat;
  std::string raw;
};
conversation_outputs run_conversation(generator& g, std::uint64_t seed);

struct conversation_result {
  std::string text;
  std::size_t failures = 0;
  double agreement = 0;
  scenario band = scenario::optimistic;
  bool loads = true, inference = true;
};
conversation_result compare_conversation(const conversation_outputs& original,
                                         const conversation_outputs& fake, std::uint64_t seed);

/// Perplexity of both models and the KL divergence of the fake-quantized one against the original.
struct perplexity_figures {
  double ppl_a = 0, err_a = 0, ppl_b = 0, err_b = 0;
  std::vector<double> chunk_delta;  ///< per chunk: mean nll(fake) − mean nll(original)
  fq::plan::interval ci95, ci99;
  std::string ci_method;
  double kld_mean = 0, kld_err = 0, kld_99 = 0, kld_max = 0, same_top = 0;  ///< same_top: fraction
  std::size_t chunks = 0, n_ctx = 0;
  std::string commands;  ///< the exact commands run
  std::string raw;       ///< the tools' raw output (llama.cpp)
  double increase() const { return ppl_b / ppl_a - 1; }
};

/// The built-in evaluator: the original evaluated once, chunk by chunk, and every fake-quantized
/// model on the same chunk (only one chunk's log-probabilities kept); with `until_confident`, each
/// model stops on its own once its 99 % interval lies in one band (after at least 4 chunks).
std::vector<perplexity_figures> builtin_perplexity(
    const fq::llama::model& original, const std::vector<const fq::llama::model*>& fakes,
    const std::vector<std::int32_t>& tokens, const fq::llama::perplexity_options& o,
    bool until_confident);

/// Text tokens for perplexity, or a clear error when the text is too short for one chunk.
std::vector<std::int32_t> perplexity_tokens(const fq::llama::tokenizer& tok, const fs::path& text,
                                            std::size_t n_ctx);

/// The commands that reproduce the built-in evaluator's perplexity runs of the original and `fake`.
std::string builtin_perplexity_commands(const common_args& a, const prepared& p,
                                        const fs::path& fake);

/// perplexity_comparison.txt.
std::string perplexity_report(const perplexity_figures& p, bool until_confident);

/// Phase 4: test1_summary.md and test1_summary.json in `results`; returns the summary JSON.
struct summary_input {
  const common_args* args = nullptr;
  const experiment* exp = nullptr;
  fq::plan::must_pass must;
  numerical nums;
  const conversation_result* conv = nullptr;
  const perplexity_figures* ppl = nullptr;
  std::vector<std::string> problems;
  std::string stopped_early;
  nlohmann::json environment;
};
nlohmann::json write_summary(const summary_input& in, const fs::path& results, bool print);

/// The summary of experiment `e` as phase 2 leaves it: verification, numerical analysis, and the
/// reason it stops early (early_stop_reason), if any.
summary_input quantized_summary(const common_args& a, const experiment& e, const quantized& q,
                                const nlohmann::json& environment);
/// The conversation tests' results added to `in` (`c` must outlive it).
void add_conversation(summary_input& in, const conversation_result& c);

/// Whether the numerical analysis or the verification stops this experiment before evaluation;
/// the reason in the report's language, or empty.
std::string early_stop_reason(const common_args& a, const quantized& q);

}  // namespace fqcli::pipeline
