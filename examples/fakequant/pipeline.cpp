// SPDX-License-Identifier: MIT
// What test1 and sweep share beyond the phases (pipeline.hpp): the run log, the evaluation
// options.
#include "pipeline.hpp"

#include <fmt/core.h>

#include <utility>

#include "preflight.hpp"

namespace fqcli::pipeline {

run_log::run_log(fs::path p) : path_(std::move(p)), out_(path_, std::ios::app) {}

void run_log::note(const std::string& line) {
  out_ << line << "\n";
  out_.flush();
}

void run_log::begin(const std::string& what) { fmt::print(stderr, "fakequant: {} …\n", what); }

void run_log::done(const std::string& what, std::chrono::steady_clock::time_point t0,
                   const std::string& result) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out_ << fmt::format("{:<60} {:8.2f} s  {}\n", what, s, result);
  out_.flush();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw fq::error(fq::errc::not_found, p.string(), "cannot open the file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void add_evaluation_options(CLI::App& cmd, common_args& a) {
  // The values are checked by the command line (a usage error) before they are parsed.
  cmd.add_option_function<std::string>(
         "--backend", [&a](const std::string& s) { a.backend = parse_backend(s); },
         "builtin (fakequant's evaluator) or llama.cpp")
      ->check(member_of(backend_names));
  cmd.add_option("--llama-cpp-dir", a.llama_cpp_dir,
                 "llama.cpp build folder (with llama-completion and llama-perplexity)");
  cmd.add_option("--threads", a.threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--ctx-size", a.ctx, "perplexity context")->check(CLI::Range(8, 1 << 20));
  cmd.add_option("--batch-size", a.batch, "perplexity batch")->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--chunks", a.chunks, "perplexity chunks (default: all)")
      ->check(CLI::Range(1, 1 << 30));
  cmd.add_option("--seed", a.seed, "seed of the sampled conversation runs");
  cmd.add_option_function<std::string>(
         "--lang", [&a](const std::string& s) { a.lang = parse_language(s); },
         "report language: en or zh-TW (Traditional Chinese)")
      ->check(member_of(language_names));
}

run_log start_log(const fs::path& folder, const std::string& heading) {
  fs::create_directories(folder);
  run_log log(folder / "run.log");
  log.note(heading);
  return log;
}

void check_inputs(const common_args& a, const std::string& tensors) {
  if (!a.model.empty() && !a.text.empty())
    check_experiment_inputs(a.model, a.text, tensors, a.demo ? 0 : 2 * a.ctx);
}

void check_evaluation_options(const common_args& a) {
  if (a.llama_cpp() && a.until_confident)
    throw CLI::ValidationError("--until-confident",
                               "needs --backend builtin (llama-perplexity's KL-divergence mode "
                               "reads every chunk of its base file)");
}

}  // namespace fqcli::pipeline
