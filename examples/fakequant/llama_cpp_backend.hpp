// SPDX-License-Identifier: MIT
// The llama.cpp backend of test1 and sweep: runs the user's llama-completion (-no-cnv) and
// llama-perplexity (perplexity, then --kl-divergence against the original's base file, as
// ../shared/docs/perplexity.md describes), keeps their raw output in the result files and reads the
// figures with fakequant/llama_cpp/logs.hpp. A missing tool or an output without the
// expected figures is an fq::error naming the tool and the file holding its output.
#pragma once

#include "pipeline.hpp"

namespace fqcli::pipeline {

/// `name` in `dir`, `dir`/bin or `dir`/build/bin (where a CMake build puts it), executable.
fs::path find_llama_tool(const fs::path& dir, const std::string& name);

/// A finished run of a tool: its command line and both streams.
struct tool_run {
  std::string command, out, err;
  int status = -1;  ///< exit status, or -1 when it died on a signal
  /// In the reference logs' layout: `$ command`, `--- stdout ---`, …, `--- stderr ---`, ….
  std::string captured() const;
};
tool_run run_tool(const fs::path& exe, const std::vector<std::string>& args);

/// Generation with llama-completion; ids are the text re-tokenized with the model's vocabulary.
/// `result_file` receives the raw output when a run cannot be read.
std::unique_ptr<generator> llama_cpp_generator(const fs::path& llama_dir, const fs::path& model,
                                               const fq::llama::tokenizer& tok, std::size_t threads,
                                               const fs::path& result_file);

/// The original's llama-perplexity run, which also writes the KL-divergence base file.
struct llama_cpp_baseline {
  double ppl = 0, err = 0;
  std::vector<double> running;
  fs::path base_file, tool;
  std::string command, raw;
  std::size_t n_ctx = 0;
};
llama_cpp_baseline llama_cpp_base(const common_args& a, const prepared& p,
                                  const fs::path& result_file);

/// The fake-quantized model's llama-perplexity --kl-divergence run against the baseline.
perplexity_figures llama_cpp_kld(const common_args& a, const llama_cpp_baseline& base,
                                 const fs::path& fake, const fs::path& result_file);

/// Per-chunk mean nll differences from two lists of running perplexities (llama.cpp prints the
/// PPL after each chunk; every chunk scores the same number of tokens): chunk k's mean nll is
/// k·ln PPL_k − (k−1)·ln PPL_{k−1}.
std::vector<double> chunk_deltas_from_running(const std::vector<double>& original,
                                              const std::vector<double>& fake);

}  // namespace fqcli::pipeline
