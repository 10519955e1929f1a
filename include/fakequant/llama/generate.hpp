// SPDX-License-Identifier: MIT
// Incremental text generation over the KV cache: the prompt in one batch, then one token at a time,
// sharing the forward pass and kernels of perplexity.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "../error.hpp"
#include "context.hpp"
#include "sampling.hpp"

namespace fq::llama {

struct generate_options {
  std::size_t n_predict = 128;  ///< tokens to generate at most
  sampler_options sampling;
  std::int32_t eos = 2;
  bool stop_at_eos = true;
};

struct generated_token {
  std::int32_t id;
  float logprob;  ///< log-probability of the token under the model (before sampling transforms)
};

struct generation_result {
  std::vector<generated_token> tokens;
  bool stopped_at_eos = false;
  std::size_t prompt_tokens = 0;
  double prompt_seconds = 0, generation_seconds = 0;
  double prompt_tokens_per_second() const noexcept {
    return prompt_seconds > 0 ? static_cast<double>(prompt_tokens) / prompt_seconds : 0;
  }
  double generation_tokens_per_second() const noexcept {
    return generation_seconds > 0 ? static_cast<double>(tokens.size()) / generation_seconds : 0;
  }
};

/// Appends `prompt` to the context (which may already hold earlier turns), then generates.
/// `on_token` (optional) sees each token as it is produced; returning false stops early.
inline generation_result generate(
    context& ctx, std::span<const std::int32_t> prompt, const generate_options& opt,
    const std::function<bool(const generated_token&)>& on_token = {}) {
  if (opt.n_predict == 0) throw error(errc::invalid_argument, "", "-n must be at least 1");
  if (prompt.empty()) throw error(errc::invalid_argument, "", "the prompt is empty");
  if (ctx.n_past() + prompt.size() + 1 > ctx.n_ctx())
    throw error(errc::invalid_argument, ctx.get_model().file().path(),
                "context overflow: the prompt needs " +
                    std::to_string(ctx.n_past() + prompt.size()) + " tokens of a context of " +
                    std::to_string(ctx.n_ctx()));
  generation_result r;
  r.prompt_tokens = prompt.size();
  sampler s(opt.sampling);
  for (auto t : prompt) s.accept(t);
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  ctx.eval(prompt, prompt.size() - 1, logits);
  auto t1 = std::chrono::steady_clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  const std::size_t n_vocab = ctx.get_model().params().n_vocab;
  for (std::size_t i = 0; i < opt.n_predict; ++i) {
    // Log-probability under the model, before penalties and temperature change the logits.
    float mx = logits[0];
    for (float v : logits) mx = std::max(mx, v);
    double sum = 0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
    const std::vector<float> original = logits;
    const auto id = s.sample(logits);
    const float lp = static_cast<float>(
        static_cast<double>(original[static_cast<std::size_t>(id)]) - mx - std::log(sum));
    s.accept(id);
    const generated_token g{id, lp};
    r.tokens.push_back(g);
    if (opt.stop_at_eos && id == opt.eos) {
      r.stopped_at_eos = true;
      break;
    }
    if (on_token && !on_token(g)) break;
    if (i + 1 == opt.n_predict) break;
    if (ctx.n_past() + 1 > ctx.n_ctx())
      throw error(errc::invalid_argument, ctx.get_model().file().path(),
                  "context overflow after " + std::to_string(r.tokens.size()) +
                      " generated tokens (context size " + std::to_string(ctx.n_ctx()) + ")");
    const std::int32_t next[1] = {id};
    ctx.eval(next, 0, logits);
    (void)n_vocab;
  }
  r.generation_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return r;
}

}  // namespace fq::llama
