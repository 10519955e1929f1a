// SPDX-License-Identifier: MIT
// Perplexity exactly as llama-perplexity computes it: the text tokenized once (BOS at the start),
// cut into non-overlapping chunks of n_ctx tokens, the first token of each chunk replaced by BOS
// during evaluation, and only the second half of each chunk scored.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"
#include "context.hpp"
#include "model.hpp"

namespace fq::llama {

struct perplexity_options {
  std::size_t n_ctx = 512;
  std::size_t n_batch = 2048;  ///< tokens per forward call (llama.cpp's -b); at most n_ctx used
  std::size_t max_chunks = 0;  ///< 0: every whole chunk of the text
  std::int32_t bos = 1;        ///< the BOS id written over each chunk's first token
  bool add_bos = true;         ///< whether the vocabulary adds BOS (llama.cpp then overwrites)
  eval_options eval;
};

/// What one scored position contributed.
struct token_score {
  float nll;       ///< −log p(target)
  float p_target;  ///< p(target)
};

struct chunk_report {
  std::size_t index;  ///< 0-based chunk number
  std::size_t n_chunks;
  double running_ppl;  ///< exp(mean nll) over all chunks so far (llama.cpp's "[i]x,")
  double seconds;      ///< wall time of this chunk
};

struct perplexity_result {
  std::size_t n_ctx = 0, n_chunks = 0, scored = 0;
  double ppl = 0.0;
  double ppl_error = 0.0;  ///< PPL × standard error of the mean nll (llama.cpp's "+/-")
  bool error_valid = false;
  std::vector<double> running_ppl;     ///< after each chunk
  std::vector<double> chunk_mean_nll;  ///< per chunk
  std::vector<token_score> tokens;     ///< per scored position, in order
  double seconds = 0.0;
  double tokens_per_second() const noexcept {
    return seconds > 0 ? static_cast<double>(n_chunks * n_ctx) / seconds : 0.0;
  }
};

/// log-softmax of `logits` at `target`, as llama-perplexity computes it (max in float, the sum of
/// exponentials in double).
inline token_score score_token(const kernel_table& k, std::span<const float> logits,
                               std::size_t target) noexcept {
  float mx = logits[0];
  for (float v : logits) mx = std::max(mx, v);
  const double sum = k.sum_exp(logits.data(), logits.size(), mx);
  const double logp = static_cast<double>(logits[target] - mx) - std::log(sum);
  return {static_cast<float>(-logp),
          static_cast<float>(std::exp(logits[target] - mx) / static_cast<float>(sum))};
}

/// Runs the computation on already tokenized text. `on_chunk` (optional) is called after each
/// chunk; `on_logits` (optional) receives every scored position's logits (chunk, position within
/// the chunk, logits), for KL-divergence bases.
inline perplexity_result perplexity(
    const model& m, std::span<const std::int32_t> tokens, const perplexity_options& opt,
    const std::function<void(const chunk_report&)>& on_chunk = {},
    const std::function<void(std::size_t, std::size_t, std::span<const float>)>& on_logits = {}) {
  const std::size_t n_ctx = opt.n_ctx;
  if (n_ctx < 4)
    throw error(errc::invalid_argument, m.file().path(), "context size must be at least 4");
  if (tokens.size() < 2 * n_ctx)
    throw error(errc::invalid_argument, "",
                "the text has " + std::to_string(tokens.size()) +
                    " tokens; perplexity at context " + std::to_string(n_ctx) + " needs at least " +
                    std::to_string(2 * n_ctx) + " (two chunks)");
  std::size_t n_chunks = tokens.size() / n_ctx;
  if (opt.max_chunks) n_chunks = std::min(n_chunks, opt.max_chunks);
  const std::size_t n_batch = std::min(std::max<std::size_t>(opt.n_batch, 1), n_ctx);
  const std::size_t first = n_ctx / 2;
  const std::size_t n_vocab = m.params().n_vocab;

  context ctx(m, n_ctx, opt.eval);
  perplexity_result r;
  r.n_ctx = n_ctx;
  r.n_chunks = n_chunks;
  double nll = 0.0, nll2 = 0.0;
  std::vector<std::int32_t> chunk(n_ctx);
  std::vector<float> logits;
  std::vector<token_score> scores;
  const auto t_start = std::chrono::steady_clock::now();
  for (std::size_t c = 0; c < n_chunks; ++c) {
    const auto t0 = std::chrono::steady_clock::now();
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(c * n_ctx), n_ctx, chunk.begin());
    if (opt.add_bos) chunk[0] = opt.bos;
    ctx.clear();
    double chunk_nll = 0.0;
    for (std::size_t b = 0; b < n_ctx; b += n_batch) {
      const std::size_t n = std::min(n_batch, n_ctx - b);
      // Logits are needed for positions first … n_ctx-2 (position j predicts token j+1).
      const std::size_t want_from = first > b ? first - b : 0;
      ctx.eval(std::span(chunk).subspan(b, n), std::min(want_from, n), logits);
      const std::size_t j0 = b + std::min(want_from, n);
      const std::size_t j1 = std::min(b + n, n_ctx - 1);  // position j predicts token j + 1
      if (j1 <= j0) continue;
      if (on_logits)
        for (std::size_t j = j0; j < j1; ++j)
          on_logits(c, j, std::span<const float>(logits.data() + (j - j0) * n_vocab, n_vocab));
      // Scoring 32k-entry rows is a real share of the work on small models: spread it too.
      scores.resize(j1 - j0);
      ctx.pool().parallel_for(j1 - j0, [&](std::size_t a, std::size_t e, std::size_t) {
        for (std::size_t i = a; i < e; ++i) {
          const auto target = static_cast<std::size_t>(tokens[c * n_ctx + j0 + i + 1]);
          scores[i] = score_token(ctx.kernels(), {logits.data() + i * n_vocab, n_vocab}, target);
        }
      });
      for (const auto& sc : scores) {
        r.tokens.push_back(sc);
        nll += sc.nll;
        nll2 += static_cast<double>(sc.nll) * sc.nll;
        chunk_nll += sc.nll;
      }
    }
    r.scored = r.tokens.size();
    r.chunk_mean_nll.push_back(chunk_nll / static_cast<double>(n_ctx - 1 - first));
    r.running_ppl.push_back(std::exp(nll / static_cast<double>(r.scored)));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_chunk) on_chunk({c, n_chunks, r.running_ppl.back(), secs});
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const double count = static_cast<double>(r.scored);
  const double mean = nll / count;
  double var = nll2 / count - mean * mean;
  r.ppl = std::exp(mean);
  if (var > 0 && r.scored > 1) {
    r.ppl_error = std::sqrt(var / (count - 1)) * r.ppl;
    r.error_valid = true;
  }
  return r;
}

}  // namespace fq::llama
