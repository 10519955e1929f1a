// SPDX-License-Identifier: MIT
// Token sampling with llama.cpp's default chain and defaults (repetition penalty, top-k, top-p,
// min-p, temperature), and a counter-based random source, so a seed reproduces a run on any
// machine and with any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <numeric>
#include <span>
#include <vector>

namespace fq::llama {

struct sampler_options {
  float temp = 0.8f;            ///< <= 0: greedy (argmax, ties to the lowest id)
  std::int32_t top_k = 40;      ///< <= 0: off
  float top_p = 0.95f;          ///< >= 1: off
  float min_p = 0.05f;          ///< <= 0: off
  float repeat_penalty = 1.0f;  ///< 1: off
  std::size_t repeat_last_n = 64;
  std::uint64_t seed = 0;
};

class sampler {
 public:
  explicit sampler(sampler_options opt = {}) : opt_(opt) {}

  /// Remembers a token of the context (prompt or generated) for the repetition penalty.
  void accept(std::int32_t token) {
    recent_.push_back(token);
    if (recent_.size() > opt_.repeat_last_n) recent_.pop_front();
  }

  /// Picks the next token from `logits` (modified in place by the penalty).
  std::int32_t sample(std::span<float> logits) {
    if (opt_.repeat_penalty != 1.0f)
      for (auto t : recent_) {
        float& l = logits[static_cast<std::size_t>(t)];
        l = l > 0 ? l / opt_.repeat_penalty : l * opt_.repeat_penalty;
      }
    const std::uint64_t step = step_++;
    if (opt_.temp <= 0.0f) return argmax(logits);

    // Candidates sorted by logit, ties by id (so the order never depends on the sort).
    std::vector<std::int32_t> cand(logits.size());
    std::iota(cand.begin(), cand.end(), 0);
    auto by_logit = [&](std::int32_t a, std::int32_t b) {
      const float la = logits[static_cast<std::size_t>(a)],
                  lb = logits[static_cast<std::size_t>(b)];
      return la != lb ? la > lb : a < b;
    };
    std::size_t keep = cand.size();
    if (opt_.top_k > 0 && static_cast<std::size_t>(opt_.top_k) < keep) {
      keep = static_cast<std::size_t>(opt_.top_k);
      std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(),
                        by_logit);
    } else {
      std::sort(cand.begin(), cand.end(), by_logit);
    }
    cand.resize(keep);
    // Probabilities of the remaining candidates.
    auto probs = [&] {
      std::vector<double> p(cand.size());
      const double mx = logits[static_cast<std::size_t>(cand[0])];
      double sum = 0;
      for (std::size_t i = 0; i < cand.size(); ++i)
        sum += p[i] = std::exp(static_cast<double>(logits[static_cast<std::size_t>(cand[i])]) - mx);
      for (auto& v : p) v /= sum;
      return p;
    };
    if (opt_.top_p < 1.0f) {
      const auto p = probs();
      double cum = 0;
      std::size_t n = 0;
      while (n < p.size()) {
        cum += p[n++];
        if (cum >= opt_.top_p) break;
      }
      cand.resize(std::max<std::size_t>(1, n));
    }
    if (opt_.min_p > 0.0f) {
      const float threshold = logits[static_cast<std::size_t>(cand[0])] + std::log(opt_.min_p);
      std::size_t n = 1;
      while (n < cand.size() && logits[static_cast<std::size_t>(cand[n])] >= threshold) ++n;
      cand.resize(n);
    }
    for (auto t : cand) logits[static_cast<std::size_t>(t)] /= opt_.temp;
    const auto p = probs();
    const double u = uniform(step);
    double cum = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (u < cum) return cand[i];
    }
    return cand.back();
  }

  /// Greedy choice: the largest logit, ties to the lowest id.
  static std::int32_t argmax(std::span<const float> logits) noexcept {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
      if (logits[i] > logits[best]) best = i;
    return static_cast<std::int32_t>(best);
  }

 private:
  // A uniform number in [0, 1) from (seed, step) alone.
  double uniform(std::uint64_t step) const noexcept {
    std::uint64_t x = opt_.seed * 0x9e3779b97f4a7c15ull + step + 0x632be59bd9b4e019ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return static_cast<double>(x >> 11) * 0x1.0p-53;
  }

  sampler_options opt_;
  std::deque<std::int32_t> recent_;
  std::uint64_t step_ = 0;
};

}  // namespace fq::llama
