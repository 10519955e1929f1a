// SPDX-License-Identifier: MIT
// KL divergence of a model against a base model's saved log-probabilities, with the statistics
// llama-perplexity --kl-divergence prints. Two base formats:
//  - fakequant's own (default): float32 log-probabilities, exact. A model against its own base
//    gives exactly KLD 0 and PPL ratio 1. Size: chunks × (n_ctx − 1 − n_ctx/2) × n_vocab × 4 bytes.
//  - llama.cpp's `_logits_` file: 16-bit log-probabilities clipped to 16 nats below the top one
//    (../shared/docs/perplexity.md §2), read and written, so base files move between the tools.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "../atomic_file.hpp"
#include "../detail/bytes.hpp"
#include "../error.hpp"
#include "../gguf/mapped_file.hpp"
#include "perplexity.hpp"

namespace fq::llama {

enum class kld_format { f32, llama };

/// Log-probabilities of one position: exact, or llama.cpp's quantized record.
struct base_record {
  // f32: n_vocab log-probabilities
  std::span<const float> logp;
  // llama: scale, min and the 16-bit values
  float scale = 0, min_log_prob = 0;
  const std::uint16_t* q = nullptr;

  float log_prob(std::size_t i) const noexcept {
    return q ? scale * static_cast<float>(q[i]) + min_log_prob : logp[i];
  }
};

namespace detail {
inline constexpr char f32_magic[8] = {'f', 'q', 'k', 'l', 'd', 'f', '3', '2'};
inline constexpr char llama_magic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
inline std::size_t llama_record_values(std::size_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }
}  // namespace detail

/// A KL-divergence base file opened for reading (memory-mapped).
class kld_base {
 public:
  static kld_base open(const std::string& path) {
    kld_base b;
    b.map_ = gguf::mapped_file::open(path);
    const auto bytes = b.map_.bytes();
    auto bad = [&](const std::string& m) -> error {
      return error(errc::invalid_argument, path, m);
    };
    if (bytes.size() < 20) throw bad("too short for a KL-divergence base file");
    std::size_t header;
    if (std::memcmp(bytes.data(), detail::llama_magic, 8) == 0) {
      b.format_ = kld_format::llama;
      b.n_ctx_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 8);
      b.n_vocab_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 12);
      b.n_chunk_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 16);
      header = 20;
    } else if (std::memcmp(bytes.data(), detail::f32_magic, 8) == 0) {
      if (bytes.size() < 24) throw bad("truncated header");
      if (fq::detail::load_le<std::uint32_t>(bytes.data() + 8) != 1)
        throw bad("unsupported fakequant KL-divergence base version");
      b.format_ = kld_format::f32;
      b.n_ctx_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 12);
      b.n_vocab_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 16);
      b.n_chunk_ = fq::detail::load_le<std::uint32_t>(bytes.data() + 20);
      header = 24;
    } else {
      throw bad("not a KL-divergence base file (neither llama.cpp's \"_logits_\" nor fakequant's)");
    }
    if (b.n_ctx_ < 4 || b.n_vocab_ == 0 || b.n_chunk_ == 0 || b.n_ctx_ > (1u << 24) ||
        b.n_vocab_ > (1u << 24) || b.n_chunk_ > (1u << 24))
      throw bad("implausible header: n_ctx " + std::to_string(b.n_ctx_) + ", n_vocab " +
                std::to_string(b.n_vocab_) + ", n_chunk " + std::to_string(b.n_chunk_));
    const std::uint64_t n_tokens = std::uint64_t{b.n_ctx_} * b.n_chunk_;
    const std::uint64_t per_record = b.format_ == kld_format::llama
                                         ? detail::llama_record_values(b.n_vocab_) * 2
                                         : std::uint64_t{b.n_vocab_} * 4;
    const std::uint64_t expected =
        header + n_tokens * 4 + std::uint64_t{b.n_chunk_} * b.scored_per_chunk() * per_record;
    if (bytes.size() != expected)
      throw bad("size " + std::to_string(bytes.size()) + " does not match its header (expected " +
                std::to_string(expected) + " bytes)");
    b.tokens_.resize(n_tokens);
    std::memcpy(b.tokens_.data(), bytes.data() + header, n_tokens * 4);
    b.records_ = header + n_tokens * 4;
    b.per_record_ = per_record;
    return b;
  }

  kld_format format() const noexcept { return format_; }
  std::uint32_t n_ctx() const noexcept { return n_ctx_; }
  std::uint32_t n_vocab() const noexcept { return n_vocab_; }
  std::uint32_t n_chunk() const noexcept { return n_chunk_; }
  std::size_t scored_per_chunk() const noexcept { return n_ctx_ - 1 - n_ctx_ / 2; }
  const std::vector<std::int32_t>& tokens() const noexcept { return tokens_; }
  const std::string& path() const noexcept { return map_.path(); }

  /// The record of scored position `k` (0 … scored_per_chunk()-1) of `chunk`.
  base_record record(std::size_t chunk, std::size_t k) const noexcept {
    const std::byte* p = map_.data() + records_ + (chunk * scored_per_chunk() + k) * per_record_;
    base_record r;
    if (format_ == kld_format::f32) {
      r.logp = {reinterpret_cast<const float*>(p), n_vocab_};
    } else {
      r.scale = fq::detail::load_le<float>(p);
      r.min_log_prob = fq::detail::load_le<float>(p + 4);
      r.q = reinterpret_cast<const std::uint16_t*>(p + 8);
    }
    return r;
  }

 private:
  gguf::mapped_file map_;
  kld_format format_ = kld_format::f32;
  std::uint32_t n_ctx_ = 0, n_vocab_ = 0, n_chunk_ = 0;
  std::vector<std::int32_t> tokens_;
  std::uint64_t records_ = 0, per_record_ = 0;
};

/// Exact log-softmax in double, stored as float (the fakequant base and the model under test use
/// the same function, which is what makes a model against its own base give exactly 0).
inline void log_softmax(std::span<const float> logits, std::span<float> out) noexcept {
  float mx = logits[0];
  for (float v : logits) mx = std::max(mx, v);
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = static_cast<double>(mx) + std::log(sum);
  for (std::size_t i = 0; i < logits.size(); ++i)
    out[i] = static_cast<float>(static_cast<double>(logits[i]) - lse);
}

/// Writes a base file while the base model is evaluated: header and tokens first, then one record
/// per scored position in order. Atomic: the file appears only after finish().
class kld_base_writer {
 public:
  kld_base_writer(const std::filesystem::path& path, kld_format format, std::uint32_t n_ctx,
                  std::uint32_t n_vocab, std::span<const std::int32_t> tokens)
      : out_(path), format_(format), n_vocab_(n_vocab) {
    const std::uint32_t n_chunk = static_cast<std::uint32_t>(tokens.size() / n_ctx);
    if (format == kld_format::llama) {
      out_.write(std::as_bytes(std::span(detail::llama_magic)));
    } else {
      out_.write(std::as_bytes(std::span(detail::f32_magic)));
      const std::uint32_t version = 1;
      out_.write(std::as_bytes(std::span(&version, 1)));
    }
    const std::uint32_t h[3] = {n_ctx, n_vocab, n_chunk};
    out_.write(std::as_bytes(std::span(h)));
    out_.write(std::as_bytes(tokens.first(std::size_t{n_chunk} * n_ctx)));
    buf_f_.resize(n_vocab);
    buf_q_.resize(detail::llama_record_values(n_vocab));
  }

  /// Appends the record of one scored position from its logits.
  void add(std::span<const float> logits) {
    if (format_ == kld_format::f32) {
      log_softmax(logits, buf_f_);
      out_.write(std::as_bytes(std::span(buf_f_)));
      return;
    }
    // llama.cpp's quantization: the range clipped to 16 nats below the top, 65535 steps.
    float mx = logits[0], mn = logits[0];
    for (float v : logits) {
      mx = std::max(mx, v);
      mn = std::min(mn, v);
    }
    mn = std::max(mn, mx - 16.0f);
    double sum = 0.0;
    for (float v : logits) sum += std::exp(v - mx);
    const float lse = static_cast<float>(std::log(sum));
    const float min_log_prob = mn - mx - lse;
    const float scale = (mx - mn) / 65535.0f;
    std::fill(buf_q_.begin(), buf_q_.end(), std::uint16_t{0});
    std::memcpy(buf_q_.data(), &scale, 4);
    std::memcpy(buf_q_.data() + 2, &min_log_prob, 4);
    if (scale != 0.0f) {
      const float inv = 1.0f / scale;
      for (std::size_t i = 0; i < n_vocab_; ++i)
        buf_q_[4 + i] =
            logits[i] > mn ? static_cast<std::uint16_t>(std::nearbyint(inv * (logits[i] - mn))) : 0;
    }
    out_.write(std::as_bytes(std::span(buf_q_)));
  }

  void finish() { out_.commit(); }

 private:
  atomic_file out_;
  kld_format format_;
  std::size_t n_vocab_;
  std::vector<float> buf_f_;
  std::vector<std::uint16_t> buf_q_;
};

/// The figures llama-perplexity --kl-divergence prints (value, uncertainty where it has one).
struct kld_result {
  std::size_t count = 0;
  double ppl_q = 0, ppl_q_err = 0, ppl_base = 0, ppl_base_err = 0;
  double cor = 0;  ///< correlation of per-token ln-probabilities
  double ln_ratio = 0, ln_ratio_err = 0, ratio = 0, ratio_err = 0, diff = 0, diff_err = 0;
  double kld_mean = 0, kld_err = 0;
  double kld_max = 0, kld_999 = 0, kld_99 = 0, kld_95 = 0, kld_90 = 0, kld_median = 0, kld_10 = 0,
         kld_5 = 0, kld_1 = 0, kld_01 = 0, kld_min = 0;
  double dp_mean = 0, dp_err = 0;  ///< Δp as fractions (llama.cpp prints ×100 %)
  double dp_max = 0, dp_999 = 0, dp_99 = 0, dp_95 = 0, dp_90 = 0, dp_75 = 0, dp_median = 0,
         dp_25 = 0, dp_10 = 0, dp_5 = 0, dp_1 = 0, dp_01 = 0, dp_min = 0;
  double rms_dp = 0, rms_dp_err = 0;
  double same_top = 0, same_top_err = 0;
};

/// Accumulates per-position comparisons of the model under test against the base.
class kld_accumulator {
 public:
  /// Compares the logits of one position with its base record; `target` is the next token.
  void add(std::span<const float> logits, const base_record& base, std::size_t target) {
    const std::size_t n = logits.size();
    float mx = logits[0];
    std::size_t imax = 0;
    for (std::size_t i = 1; i < n; ++i)
      if (logits[i] > mx) {
        mx = logits[i];
        imax = i;
      }
    double kld = 0.0, nll, nll_base;
    std::size_t imax_base = 0;
    if (!base.q) {
      // Exact: both sides through the same log-softmax.
      lq_.resize(n);
      log_softmax(logits, lq_);
      for (std::size_t i = 0; i < n; ++i) {
        const double lb = base.logp[i];
        if (lb > base.logp[imax_base]) imax_base = i;
        if (std::isfinite(lb)) kld += std::exp(lb) * (lb - lq_[i]);
      }
      nll = -static_cast<double>(lq_[target]);
      nll_base = -static_cast<double>(base.logp[target]);
    } else {
      // As llama-perplexity: only base probabilities above e^-16 contribute.
      double sum_exp = 0.0;
      for (float v : logits) sum_exp += std::exp(v - mx);
      const float lse = static_cast<float>(std::log(sum_exp));
      nll = static_cast<double>(mx + lse - logits[target]);
      nll_base = -static_cast<double>(base.log_prob(target));
      const float top = mx + lse;
      float best = 0.0f;
      for (std::size_t i = 0; i < n; ++i) {
        const float lb = base.log_prob(i);
        if (i == 0 || lb > best) {
          best = lb;
          imax_base = i;
        }
        if (lb > -16.0f) kld += std::exp(lb) * (lb - logits[i] + top);
      }
    }
    sum_nll_ += nll;
    sum_nll2_ += nll * nll;
    sum_nll_base_ += nll_base;
    sum_nll_base2_ += nll_base * nll_base;
    sum_nll_nll_base_ += nll * nll_base;
    sum_kld_ += kld;
    sum_kld2_ += kld * kld;
    if (imax == imax_base) ++same_top_;
    const double p_diff = std::exp(-nll) - std::exp(-nll_base);
    sum_dp_ += p_diff;
    sum_dp2_ += p_diff * p_diff;
    sum_dp4_ += p_diff * p_diff * p_diff * p_diff;
    klds_.push_back(kld);
    dps_.push_back(p_diff);
    ++count_;
  }

  std::size_t count() const noexcept { return count_; }
  /// Per-token values, in order (for paired statistics).
  const std::vector<double>& klds() const noexcept { return klds_; }

  kld_result result() const {
    kld_result r;
    const double n = static_cast<double>(count_);
    r.count = count_;
    if (count_ == 0) return r;
    auto mean_unc = [&](double s, double s2) {
      const double m = s / n;
      const double v = count_ > 10 ? std::sqrt(std::max(0.0, (s2 / n - m * m) / (n - 1))) : 0.0;
      return std::pair{m, v};
    };
    const auto [lq, lq_err] = mean_unc(sum_nll_, sum_nll2_);
    const auto [lb, lb_err] = mean_unc(sum_nll_base_, sum_nll_base2_);
    r.ppl_q = std::exp(lq);
    r.ppl_q_err = r.ppl_q * lq_err;
    r.ppl_base = std::exp(lb);
    r.ppl_base_err = r.ppl_base * lb_err;
    const double cov = sum_nll_nll_base_ / n - lq * lb;
    const double var_q = sum_nll2_ / n - lq * lq, var_b = sum_nll_base2_ / n - lb * lb;
    r.cor = var_q > 0 && var_b > 0 ? cov / std::sqrt(var_q * var_b) : 0.0;
    r.ln_ratio = lq - lb;
    const double cov_mean = count_ > 10 ? cov / (n - 1) : 0.0;
    r.ln_ratio_err = std::sqrt(std::max(0.0, lq_err * lq_err + lb_err * lb_err - 2 * cov_mean));
    r.ratio = std::exp(r.ln_ratio);
    r.ratio_err = r.ratio * r.ln_ratio_err;
    r.diff = r.ppl_q - r.ppl_base;
    r.diff_err =
        std::sqrt(std::max(0.0, r.ppl_q_err * r.ppl_q_err + r.ppl_base_err * r.ppl_base_err -
                                    2 * r.ppl_q * r.ppl_base * cov_mean));
    std::tie(r.kld_mean, r.kld_err) = mean_unc(sum_kld_, sum_kld2_);
    std::tie(r.dp_mean, r.dp_err) = mean_unc(sum_dp_, sum_dp2_);
    const auto [dp2, dp2_err] = mean_unc(sum_dp2_, sum_dp4_);
    r.rms_dp = std::sqrt(dp2);
    r.rms_dp_err = r.rms_dp > 0 ? 0.5 / r.rms_dp * dp2_err : 0.0;
    r.same_top = static_cast<double>(same_top_) / n;
    r.same_top_err = count_ > 1 ? std::sqrt(r.same_top * (1 - r.same_top) / (n - 1)) : 0.0;

    auto k = klds_;
    std::sort(k.begin(), k.end());
    r.kld_max = k.back();
    r.kld_999 = percentile(k, 0.999);
    r.kld_99 = percentile(k, 0.99);
    r.kld_95 = percentile(k, 0.95);
    r.kld_90 = percentile(k, 0.90);
    r.kld_median = percentile(k, 0.5);
    r.kld_10 = percentile(k, 0.10);
    r.kld_5 = percentile(k, 0.05);
    r.kld_1 = percentile(k, 0.01);
    r.kld_01 = percentile(k, 0.001);
    r.kld_min = k.front();
    auto d = dps_;
    std::sort(d.begin(), d.end());
    r.dp_max = d.back();
    r.dp_999 = percentile(d, 0.999);
    r.dp_99 = percentile(d, 0.99);
    r.dp_95 = percentile(d, 0.95);
    r.dp_90 = percentile(d, 0.90);
    r.dp_75 = percentile(d, 0.75);
    r.dp_median = percentile(d, 0.5);
    r.dp_25 = percentile(d, 0.25);
    r.dp_10 = percentile(d, 0.10);
    r.dp_5 = percentile(d, 0.05);
    r.dp_1 = percentile(d, 0.01);
    r.dp_01 = percentile(d, 0.001);
    r.dp_min = d.front();
    return r;
  }

 private:
  // Linear interpolation between order statistics, as llama-perplexity.
  static double percentile(const std::vector<double>& sorted, double fraction) {
    if (fraction <= 0) return sorted.front();
    if (fraction >= 1) return sorted.back();
    double p = fraction * static_cast<double>(sorted.size() - 1);
    const auto ip = static_cast<std::size_t>(p);
    p -= static_cast<double>(ip);
    return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
  }

  std::vector<float> lq_;
  std::vector<double> klds_, dps_;
  std::size_t count_ = 0, same_top_ = 0;
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp_ = 0, sum_dp2_ = 0, sum_dp4_ = 0;
};

/// Evaluates `m` on the base file's tokens and chunks (its n_ctx overrides opt.n_ctx;
/// opt.max_chunks limits the chunks, which llama.cpp ignores here) and compares every scored
/// position.
inline std::pair<perplexity_result, kld_result> kl_divergence(
    const model& m, const kld_base& base, perplexity_options opt,
    const std::function<void(const chunk_report&)>& on_chunk = {}) {
  if (base.n_vocab() != m.params().n_vocab)
    throw error(errc::invalid_argument, base.path(),
                "base has a vocabulary of " + std::to_string(base.n_vocab()) +
                    " tokens, the model " + std::to_string(m.params().n_vocab));
  opt.n_ctx = base.n_ctx();
  const std::size_t first = opt.n_ctx / 2;
  const auto& tokens = base.tokens();
  kld_accumulator acc;
  auto ppl = perplexity(m, tokens, opt, on_chunk,
                        [&](std::size_t c, std::size_t j, std::span<const float> logits) {
                          acc.add(logits, base.record(c, j - first),
                                  static_cast<std::size_t>(tokens[c * opt.n_ctx + j + 1]));
                        });
  return {std::move(ppl), acc.result()};
}

/// Evaluates the base model and writes its base file at `path`.
inline perplexity_result write_kld_base(
    const model& m, std::span<const std::int32_t> tokens, const perplexity_options& opt,
    const std::filesystem::path& path, kld_format format,
    const std::function<void(const chunk_report&)>& on_chunk = {}) {
  std::size_t n_chunks = tokens.size() / opt.n_ctx;
  if (opt.max_chunks) n_chunks = std::min(n_chunks, opt.max_chunks);
  kld_base_writer w(path, format, static_cast<std::uint32_t>(opt.n_ctx), m.params().n_vocab,
                    tokens.first(std::min(tokens.size(), n_chunks * opt.n_ctx)));
  auto r =
      perplexity(m, tokens, opt, on_chunk,
                 [&](std::size_t, std::size_t, std::span<const float> logits) { w.add(logits); });
  w.finish();
  return r;
}

}  // namespace fq::llama
