// SPDX-License-Identifier: MIT
// The forward pass of a LLaMA model over a KV cache: whole chunks at once (matrix × matrix), or one
// token at a time for generation, sharing the same kernels.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../error.hpp"
#include "../thread_pool.hpp"
#include "dispatch.hpp"
#include "kernels.hpp"
#include "model.hpp"
#include "quant_dot.hpp"

namespace fq::llama {

struct eval_options {
  llama::activations activations = llama::activations::ggml;
  std::size_t threads = 0;  ///< 0: all cores
  /// The kernels (llama/dispatch.hpp); unset: best_kernels(), this CPU's best or FQ_FORCE_ARCH's,
  /// chosen when a context is made.
  std::optional<kernel_table> kernels{};
};

/// Evaluation state of one sequence: the KV cache and scratch buffers.
class context {
 public:
  context(const model& m, std::size_t n_ctx, eval_options opt = {})
      : m_(m),
        hp_(m.params()),
        n_ctx_(n_ctx),
        opt_(opt),
        kernels_(opt.kernels ? *opt.kernels : best_kernels()),
        pool_(opt.threads) {
    if (n_ctx == 0)
      throw error(errc::invalid_argument, m.file().path(), "context size must be > 0");
    const std::size_t kv = hp_.n_embd_kv();
    k_cache_.assign(hp_.n_layer * n_ctx * kv, 0.0f);
    // V is kept transposed (per layer: kv rows of n_ctx positions), as the weight operand of the
    // probabilities × V product.
    v_cache_.assign(hp_.n_layer * n_ctx * kv, 0.0f);
    // Norm weights are small: decode them once.
    auto decode_vec = [](const weight& w) {
      std::vector<float> v(static_cast<std::size_t>(w.cols));
      gguf::decode_blocks(w.type, w.data.data(), v.size() / gguf::block_elements(w.type), v.data());
      return v;
    };
    for (const auto& l : m.layers()) {
      attn_norm_.push_back(decode_vec(l.attn_norm));
      ffn_norm_.push_back(decode_vec(l.ffn_norm));
    }
    out_norm_ = decode_vec(m.output_norm());
  }

  const model& get_model() const noexcept { return m_; }
  std::size_t n_ctx() const noexcept { return n_ctx_; }
  std::size_t n_past() const noexcept { return n_past_; }
  std::size_t threads() const noexcept { return pool_.size(); }
  fq::thread_pool& pool() noexcept { return pool_; }
  const kernel_table& kernels() const noexcept { return kernels_; }
  /// Forgets the cache (a new sequence starts at position 0).
  void clear() noexcept { n_past_ = 0; }

  /// Evaluates `tokens` at positions n_past() … and appends them to the cache. Logits of tokens
  /// from index `first_logit` on are written to `logits` ((n - first_logit) × n_vocab floats).
  void eval(std::span<const std::int32_t> tokens, std::size_t first_logit,
            std::vector<float>& logits) {
    const std::size_t n = tokens.size();
    if (n == 0) return;
    if (n_past_ + n > n_ctx_)
      throw error(errc::invalid_argument, m_.file().path(),
                  "context overflow: " + std::to_string(n_past_ + n) +
                      " tokens exceed the context "
                      "size " +
                      std::to_string(n_ctx_));
    const std::size_t d = hp_.n_embd, kv = hp_.n_embd_kv(), ff = hp_.n_ff, hd = hp_.head_dim();
    const bool ggml = opt_.activations == activations::ggml;
    x_.resize(n * d);
    xn_.resize(n * std::max(d, ff));
    q_.resize(n * d);
    k_.resize(n * kv);
    v_.resize(n * kv);
    att_.resize(n * d);
    gate_.resize(n * ff);
    up_.resize(n * ff);

    // Embeddings: rows of token_embd, decoded.
    const auto& emb = m_.tok_embd();
    for (std::size_t t = 0; t < n; ++t) {
      const auto id = tokens[t];
      if (id < 0 || static_cast<std::uint64_t>(id) >= emb.rows)
        throw error(errc::invalid_argument, m_.file().path(),
                    "token id " + std::to_string(id) + " outside the vocabulary");
      gguf::decode_blocks(emb.type, emb.row(static_cast<std::uint64_t>(id)),
                          d / gguf::block_elements(emb.type), x_.data() + t * d);
    }

    // RoPE angles of each new position, shared by every head and layer.
    rope_cs_.resize(n * hp_.n_rot);
    for (std::size_t t = 0; t < n; ++t)
      rope_table(hp_.n_rot, static_cast<std::int64_t>(n_past_ + t), hp_.rope_freq_base,
                 rope_cs_.data() + t * hp_.n_rot);

    for (std::size_t il = 0; il < m_.layers().size(); ++il) {
      const auto& l = m_.layers()[il];
      // Attention block.
      per_token(n, [&](std::size_t t) {
        rms_norm(x_.data() + t * d, attn_norm_[il].data(), d, hp_.rms_eps, xn_.data() + t * d);
      });
      product(l.wq, xn_.data(), n, q_.data(), ggml);
      product(l.wk, xn_.data(), n, k_.data(), ggml);
      product(l.wv, xn_.data(), n, v_.data(), ggml);
      check(il, "attn_q/k/v", q_, n * d);
      float* kc = k_cache_.data() + il * n_ctx_ * kv;
      float* vtc = v_cache_.data() + il * n_ctx_ * kv;
      per_token(n, [&](std::size_t t) {
        const float* cs = rope_cs_.data() + t * hp_.n_rot;
        for (std::size_t h = 0; h < hp_.n_head; ++h)
          rope_apply(q_.data() + t * d + h * hd, hp_.n_rot, cs);
        for (std::size_t h = 0; h < hp_.n_head_kv; ++h)
          rope_apply(k_.data() + t * kv + h * hd, hp_.n_rot, cs);
        // llama.cpp's KV cache is F16 by default.
        const std::size_t pos = n_past_ + t;
        for (std::size_t i = 0; i < kv; ++i) {
          const float kx = k_[t * kv + i], vx = v_[t * kv + i];
          kc[pos * kv + i] = ggml ? detail::round_to_f16(kx) : kx;
          vtc[i * n_ctx_ + pos] = ggml ? detail::round_to_f16(vx) : vx;
        }
      });
      attention(kc, vtc, n);
      product(l.wo, att_.data(), n, xn_.data(), ggml);
      for (std::size_t i = 0; i < n * d; ++i) x_[i] += xn_[i];
      check(il, "attn_output", x_, n * d);

      // Feed-forward block (SwiGLU).
      per_token(n, [&](std::size_t t) {
        rms_norm(x_.data() + t * d, ffn_norm_[il].data(), d, hp_.rms_eps, xn_.data() + t * d);
      });
      product(l.w_gate, xn_.data(), n, gate_.data(), ggml);
      product(l.w_up, xn_.data(), n, up_.data(), ggml);
      per_token(n, [&](std::size_t t) {
        for (std::size_t i = t * ff; i < (t + 1) * ff; ++i) {
          const float g = gate_[i];
          gate_[i] = (g / (1.0f + std::exp(-g))) * up_[i];
        }
      });
      check(il, "ffn_gate/up", gate_, n * ff);
      product(l.w_down, gate_.data(), n, xn_.data(), ggml);
      for (std::size_t i = 0; i < n * d; ++i) x_[i] += xn_[i];
      check(il, "ffn_down", x_, n * d);
    }

    // Output: only the rows whose logits are wanted.
    const std::size_t nl = n > first_logit ? n - first_logit : 0;
    for (std::size_t t = 0; t < nl; ++t)
      rms_norm(x_.data() + (first_logit + t) * d, out_norm_.data(), d, hp_.rms_eps,
               xn_.data() + t * d);
    logits.resize(nl * hp_.n_vocab);
    product(m_.output(), xn_.data(), nl, logits.data(), ggml);
    check(hp_.n_layer, "output", logits, logits.size());
    n_past_ += n;
  }

 private:
  // y = W·x for n tokens; in ggml mode the product sees x rounded to the weight type's partner
  // type.
  void product(const weight& w, const float* x, std::size_t n, float* y, bool ggml) {
    if (n == 0) return;
    if (ggml && has_integer_dot(w.type)) {
      quantize_activations(w.type, x, n, static_cast<std::size_t>(w.cols), xq_);
      matmul_int(kernels_, w, xq_, y, pool_);
      return;
    }
    if (ggml && w.type != gguf::ggml_type::f32) {
      const std::size_t cols = static_cast<std::size_t>(w.cols);
      xr_.resize(n * cols);
      per_token(n, [&](std::size_t t) {
        std::copy(x + t * cols, x + (t + 1) * cols, xr_.data() + t * cols);
        round_activations(w.type, {xr_.data() + t * cols, cols});
      });
      x = xr_.data();
    }
    matmul(kernels_, w, x, n, y, pool_);
  }

  // fn(t) for every token t < n, the tokens split between the threads.
  template <class F>
  void per_token(std::size_t n, F&& fn) {
    pool_.parallel_for(n, [&](std::size_t b, std::size_t e, std::size_t) {
      for (std::size_t t = b; t < e; ++t) fn(t);
    });
  }

  // Causal attention of the n new tokens over the cache, with grouped-query heads, as two matrix
  // products per (KV head, block of queries): the query rows of all heads sharing that KV head
  // against the keys (scores), then the probabilities against the transposed values.
  void attention(const float* kc, const float* vtc, std::size_t n) {
    const std::size_t d = hp_.n_embd, kv = hp_.n_embd_kv(), hd = hp_.head_dim();
    const std::size_t group = hp_.n_head / hp_.n_head_kv, n_kv = hp_.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const auto& k = kernels_;
    const std::size_t pt = k.panel_tokens;
    // Queries per block: about 64 score rows, a whole number of packed panels.
    const std::size_t qb = std::max<std::size_t>(1, 64 / group);
    const std::size_t n_blocks = (n + qb - 1) / qb, jobs = n_blocks * n_kv;
    att_scratch_.resize(pool_.size());
    std::atomic<std::size_t> next{0};
    pool_.parallel_for(pool_.size(), [&](std::size_t, std::size_t, std::size_t thread) {
      auto& s = att_scratch_[thread];
      for (std::size_t job; (job = next.fetch_add(1)) < jobs;) {
        // The last query blocks see the most keys: they go first, for balance.
        const std::size_t blk = n_blocks - 1 - job / n_kv, g = job % n_kv;
        const std::size_t t0 = blk * qb, nt = std::min(qb, n - t0), rows = group * nt;
        const std::size_t len = n_past_ + t0 + nt;
        s.q.resize(rows * hd);
        for (std::size_t hh = 0; hh < group; ++hh)
          for (std::size_t t = 0; t < nt; ++t)
            std::copy_n(q_.data() + (t0 + t) * d + (g * group + hh) * hd, hd,
                        s.q.data() + (hh * nt + t) * hd);
        s.qp.resize(packed_tokens_size(rows, hd, pt));
        pack_tokens(s.q.data(), rows, hd, pt, s.qp.data());
        s.s.resize(rows * len);
        k.gemm(kc + g * hd, kv, len, s.qp.data(), rows, hd, s.s.data(), len);
        s.inv.resize(rows);
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t lim = n_past_ + t0 + r % nt + 1;  // causal: keys up to its position
          float* row = s.s.data() + r * len;
          s.inv[r] = 1.0f / k.softmax(row, lim, scale);
          std::fill(row + lim, row + len, 0.0f);
        }
        s.pp.resize(packed_tokens_size(rows, len, pt));
        pack_tokens(s.s.data(), rows, len, pt, s.pp.data());
        s.o.resize(rows * hd);
        k.gemm(vtc + g * hd * n_ctx_, n_ctx_, hd, s.pp.data(), rows, len, s.o.data(), hd);
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t hh = r / nt, t = r % nt;
          float* out = att_.data() + (t0 + t) * d + (g * group + hh) * hd;
          for (std::size_t i = 0; i < hd; ++i) out[i] = s.o[r * hd + i] * s.inv[r];
        }
      }
    });
  }

  void check(std::size_t layer, const char* what, const std::vector<float>& v,
             std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) {
        throw error(errc::numeric, m_.file().path(),
                    std::string(std::isnan(v[i]) ? "NaN" : "Inf") + " in the activations after " +
                        (layer < hp_.n_layer ? "layer " + std::to_string(layer) + " " : "") + what +
                        " (element " + std::to_string(i) + ")");
      }
    }
  }

  const model& m_;
  hparams hp_;
  std::size_t n_ctx_;
  eval_options opt_;
  kernel_table kernels_;
  fq::thread_pool pool_;
  std::size_t n_past_ = 0;
  std::vector<float> k_cache_, v_cache_;
  struct attention_scratch {
    std::vector<float> q, qp, s, pp, o, inv;
  };
  std::vector<attention_scratch> att_scratch_;
  std::vector<std::vector<float>> attn_norm_, ffn_norm_;
  std::vector<float> rope_cs_;
  std::vector<float> out_norm_;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, xr_;
  quantized_activations xq_;
};

}  // namespace fq::llama
