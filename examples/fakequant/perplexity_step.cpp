// SPDX-License-Identifier: MIT
// Perplexity and KL divergence with the built-in evaluator, and perplexity_comparison.txt
// (pipeline.hpp).
#include <fmt/core.h>
#include <unistd.h>

#include <cmath>
#include <fakequant/llama/kld.hpp>

#include "pipeline.hpp"

namespace fqcli::pipeline {

std::vector<std::int32_t> perplexity_tokens(const fq::llama::tokenizer& tok, const fs::path& text,
                                            std::size_t n_ctx) {
  const auto tokens = tok.encode(read_file(text), true, false);
  if (tokens.size() < 2 * n_ctx)
    throw fq::error(
        fq::errc::invalid_argument, text.string(),
        fmt::format("the text has {} tokens; perplexity at context {} needs at least {}",
                    tokens.size(), n_ctx, 2 * n_ctx));
  return tokens;
}

std::vector<perplexity_figures> builtin_perplexity(
    const fq::llama::model& ma, const std::vector<const fq::llama::model*>& fakes,
    const std::vector<std::int32_t>& tokens, const fq::llama::perplexity_options& o,
    bool until_confident) {
  const std::size_t first = o.n_ctx / 2, k = fakes.size();
  std::vector<fq::llama::kld_accumulator> acc(k);
  std::vector<std::vector<float>> nll_a(k), nll_b(k);  // per-token nll, chunks done by each
  std::vector<perplexity_figures> r(k);
  std::vector<bool> active(k, true);
  std::vector<std::vector<float>> base;  // log-probabilities of the original, one chunk
  auto keep = [&](std::size_t, std::size_t j, std::span<const float> logits) {
    const std::size_t at = j - first;
    if (base.size() <= at) base.resize(at + 1);
    base[at].resize(logits.size());
    fq::llama::log_softmax(logits, base[at]);
  };
  const std::size_t whole = tokens.size() / o.n_ctx;
  const std::size_t n_chunks = std::min(o.max_chunks ? o.max_chunks : whole, whole);
  // The chunk is given twice (perplexity() wants two chunks of text) and only the first is
  // evaluated, so one chunk's log-probabilities of the original are all that is kept.
  for (std::size_t c = 0; c < n_chunks; ++c) {
    if (std::none_of(active.begin(), active.end(), [](bool x) { return x; })) break;
    auto oc = o;
    oc.max_chunks = 1;
    std::vector<std::int32_t> chunk(
        tokens.begin() + static_cast<std::ptrdiff_t>(c * o.n_ctx),
        tokens.begin() + static_cast<std::ptrdiff_t>((c + 1) * o.n_ctx));
    chunk.insert(chunk.end(), chunk.begin(), chunk.end());
    const auto ra = fq::llama::perplexity(ma, chunk, oc, {}, keep);
    for (std::size_t e = 0; e < k; ++e) {
      if (!active[e]) continue;
      const auto rb = fq::llama::perplexity(
          *fakes[e], chunk, oc, {}, [&](std::size_t, std::size_t j, std::span<const float> l) {
            fq::llama::base_record rec;
            rec.logp = base[j - first];
            acc[e].add(l, rec, static_cast<std::size_t>(chunk[j + 1]));
          });
      for (const auto& t : ra.tokens) nll_a[e].push_back(t.nll);
      for (const auto& t : rb.tokens) nll_b[e].push_back(t.nll);
      r[e].chunk_delta.push_back(rb.chunk_mean_nll[0] - ra.chunk_mean_nll[0]);
      if (until_confident && fq::plan::confident(r[e].chunk_delta)) active[e] = false;
    }
    if (::isatty(2)) fmt::print(stderr, "\rperplexity: chunk {}/{}", c + 1, n_chunks);
  }
  if (::isatty(2)) fmt::print(stderr, "\n");
  auto ppl_of = [](const std::vector<float>& nll, double& ppl, double& err) {
    double s = 0, s2 = 0;
    for (float v : nll) s += v, s2 += static_cast<double>(v) * v;
    const double n = static_cast<double>(nll.size()), mean = s / n;
    ppl = std::exp(mean);
    const double var = s2 / n - mean * mean;
    err = var > 0 && n > 1 ? std::sqrt(var / (n - 1)) * ppl : 0;
  };
  for (std::size_t e = 0; e < k; ++e) {
    auto& f = r[e];
    ppl_of(nll_a[e], f.ppl_a, f.err_a);
    ppl_of(nll_b[e], f.ppl_b, f.err_b);
    f.chunks = f.chunk_delta.size();
    f.n_ctx = o.n_ctx;
    f.ci95 = fq::plan::ratio_interval(f.chunk_delta, 0.95);
    f.ci99 = fq::plan::ratio_interval(f.chunk_delta, 0.99);
    f.ci_method = "Student-t on the per-chunk paired differences";
    const auto kr = acc[e].result();
    f.kld_mean = kr.kld_mean;
    f.kld_err = kr.kld_err;
    f.kld_99 = kr.kld_99;
    f.kld_max = kr.kld_max;
    f.same_top = kr.same_top;
  }
  return r;
}

std::string builtin_perplexity_commands(const common_args& a, const prepared& p,
                                        const fs::path& fake) {
  return fmt::format("fakequant perplexity -m {} -f {} -c {} -b {}{}\n(and the same with {})\n",
                     p.original.string(), p.text.string(), p.ppl.n_ctx, p.ppl.n_batch,
                     a.chunks ? " --chunks " + std::to_string(a.chunks) : "", fake.string());
}

std::string perplexity_report(const perplexity_figures& p, bool until_confident) {
  std::string s = fmt::format(
      "original:       PPL = {:.4f} +/- {:.5f}\nfake-quantized: PPL = {:.4f} +/- {:.5f}\n"
      "increase: {:+.6f} ({:+.4f} %), 95 % interval: {:+.4f} … {:+.4f} % over {} chunks ({})\n"
      "KL divergence: mean {:.6f} ± {:.6f}, 99 % {:.6f}, max {:.6f}; same top p {:.3f} %\n",
      p.ppl_a, p.err_a, p.ppl_b, p.err_b, p.ppl_b - p.ppl_a, 100 * p.increase(), 100 * p.ci95.lo,
      100 * p.ci95.hi, p.chunks, p.ci_method, p.kld_mean, p.kld_err, p.kld_99, p.kld_max,
      100 * p.same_top);
  if (until_confident)
    s += fmt::format("--until-confident: {} chunks, 99 % interval {:+.4f} … {:+.4f} %{}\n",
                     p.chunks, 100 * p.ci99.lo, 100 * p.ci99.hi,
                     fq::plan::confident(p.chunk_delta) ? " (one band)" : " (not yet one band)");
  s += "commands:\n" + p.commands;
  if (!p.raw.empty()) s += "\n# raw output of every run\n\n" + p.raw;
  return s;
}

}  // namespace fqcli::pipeline
