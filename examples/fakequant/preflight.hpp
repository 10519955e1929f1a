// SPDX-License-Identifier: MIT
// The inputs of an experiment (test1, sweep) checked before any work: a bad model, format, tensor
// pattern or text is reported against the user's file, not the backup copied from it, and before
// minutes are spent copying a large model.
#pragma once

#include <fmt/core.h>

#include <fakequant/gguf.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fakequant/quantize.hpp>
#include <string>

#include "checks.hpp"

namespace fqcli {

/// Throws fq::error for a model that is not a readable GGUF file, a tensor pattern that matches
/// nothing, or a text that is missing, empty, not UTF-8 or shorter than `min_tokens` tokens of the
/// model's tokenizer.
inline void check_experiment_inputs(const std::string& model, const std::string& text,
                                    const std::string& tensors, std::size_t min_tokens) {
  const auto f = fq::gguf::file::open(model);
  (void)fq::match_tensors(f, fq::gguf::split_patterns(tensors));
  const auto s = read_text_input(text, "--text");
  std::size_t n = 0;
  try {
    n = fq::llama::tokenizer::from_file(f).encode(s, true, false).size();
  } catch (const fq::error&) {
    return;  // no built-in tokenizer for this model: the evaluation step reports it
  }
  if (n < min_tokens)
    throw fq::error(fq::errc::invalid_argument, text,
                    fmt::format("the text has {} tokens, perplexity needs at least {}; use a "
                                "longer text or a smaller --ctx-size",
                                n, min_tokens));
}

}  // namespace fqcli
