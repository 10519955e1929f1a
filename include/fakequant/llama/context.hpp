// SPDX-License-Identifier: MIT
// The forward pass of a LLaMA model over a KV cache: whole chunks at once (matrix × matrix), or one
// token at a time for generation, sharing the same kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "../detail/thread_pool.hpp"
#include "../error.hpp"
#include "kernels.hpp"
#include "model.hpp"
#include "quant_dot.hpp"

namespace fq::llama {

struct eval_options {
  llama::activations activations = llama::activations::ggml;
  std::size_t threads = 0;  ///< 0: all cores
  kernel_table kernels = default_kernels();
};

/// Evaluation state of one sequence: the KV cache and scratch buffers.
class context {
 public:
  context(const model& m, std::size_t n_ctx, eval_options opt = {})
      : m_(m), hp_(m.params()), n_ctx_(n_ctx), opt_(opt), pool_(opt.threads) {
    if (n_ctx == 0)
      throw error(errc::invalid_argument, m.file().path(), "context size must be > 0");
    const std::size_t kv = hp_.n_embd_kv();
    k_cache_.assign(hp_.n_layer * n_ctx * kv, 0.0f);
    v_cache_.assign(hp_.n_layer * n_ctx * kv, 0.0f);
    // Norm weights are small: decode them once.
    auto decode_vec = [](const weight& w) {
      std::vector<float> v(static_cast<std::size_t>(w.cols));
      format::decode_blocks(w.type, w.data.data(), v.size() / format::block_elements(w.type),
                            v.data());
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
  fq::detail::thread_pool& pool() noexcept { return pool_; }
  const kernel_table& kernels() const noexcept { return opt_.kernels; }
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
      format::decode_blocks(emb.type, emb.row(static_cast<std::uint64_t>(id)),
                            d / format::block_elements(emb.type), x_.data() + t * d);
    }

    for (std::size_t il = 0; il < m_.layers().size(); ++il) {
      const auto& l = m_.layers()[il];
      // Attention block.
      for (std::size_t t = 0; t < n; ++t)
        rms_norm(x_.data() + t * d, attn_norm_[il].data(), d, hp_.rms_eps, xn_.data() + t * d);
      product(l.wq, xn_.data(), n, q_.data(), ggml);
      product(l.wk, xn_.data(), n, k_.data(), ggml);
      product(l.wv, xn_.data(), n, v_.data(), ggml);
      check(il, "attn_q/k/v", q_, n * d);
      for (std::size_t t = 0; t < n; ++t) {
        const auto pos = static_cast<std::int64_t>(n_past_ + t);
        for (std::size_t h = 0; h < hp_.n_head; ++h)
          rope(q_.data() + t * d + h * hd, hp_.n_rot, pos, hp_.rope_freq_base);
        for (std::size_t h = 0; h < hp_.n_head_kv; ++h)
          rope(k_.data() + t * kv + h * hd, hp_.n_rot, pos, hp_.rope_freq_base);
      }
      float* kc = k_cache_.data() + il * n_ctx_ * kv;
      float* vc = v_cache_.data() + il * n_ctx_ * kv;
      for (std::size_t i = 0; i < n * kv; ++i) {
        // llama.cpp's KV cache is F16 by default.
        kc[n_past_ * kv + i] = ggml ? detail::round_to_f16(k_[i]) : k_[i];
        vc[n_past_ * kv + i] = ggml ? detail::round_to_f16(v_[i]) : v_[i];
      }
      attention(kc, vc, n);
      product(l.wo, att_.data(), n, xn_.data(), ggml);
      for (std::size_t i = 0; i < n * d; ++i) x_[i] += xn_[i];
      check(il, "attn_output", x_, n * d);

      // Feed-forward block (SwiGLU).
      for (std::size_t t = 0; t < n; ++t)
        rms_norm(x_.data() + t * d, ffn_norm_[il].data(), d, hp_.rms_eps, xn_.data() + t * d);
      product(l.w_gate, xn_.data(), n, gate_.data(), ggml);
      product(l.w_up, xn_.data(), n, up_.data(), ggml);
      for (std::size_t i = 0; i < n * ff; ++i) {
        const float g = gate_[i];
        gate_[i] = (g / (1.0f + std::exp(-g))) * up_[i];
      }
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
      matmul_int(opt_.kernels, w, xq_, y, pool_);
      return;
    }
    if (ggml && w.type != gguf::ggml_type::f32) {
      const std::size_t cols = static_cast<std::size_t>(w.cols);
      xr_.assign(x, x + n * cols);
      for (std::size_t t = 0; t < n; ++t) round_activations(w.type, {xr_.data() + t * cols, cols});
      x = xr_.data();
    }
    matmul(opt_.kernels, w, x, n, y, pool_);
  }

  // Causal attention of the n new tokens over the cache, with grouped-query heads.
  void attention(const float* kc, const float* vc, std::size_t n) {
    const std::size_t d = hp_.n_embd, kv = hp_.n_embd_kv(), hd = hp_.head_dim();
    const std::size_t group = hp_.n_head / hp_.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    scores_.resize(pool_.size());
    pool_.parallel_for(n * hp_.n_head, [&](std::size_t b, std::size_t e, std::size_t thread) {
      auto& s = scores_[thread];
      s.resize(n_past_ + n);
      std::vector<float> qh(hd);
      for (std::size_t job = b; job < e; ++job) {
        const std::size_t t = job / hp_.n_head, h = job % hp_.n_head, g = h / group;
        const std::size_t len = n_past_ + t + 1;
        const float* q = q_.data() + t * d + h * hd;
        for (std::size_t i = 0; i < hd; ++i) qh[i] = q[i];
        float* out = att_.data() + t * d + h * hd;
        float mx = -INFINITY;
        for (std::size_t j = 0; j < len; ++j) {
          s[j] = opt_.kernels.dot(qh.data(), kc + j * kv + g * hd, hd) * scale;
          mx = std::max(mx, s[j]);
        }
        float sum = 0.0f;
        for (std::size_t j = 0; j < len; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        std::fill(out, out + hd, 0.0f);
        for (std::size_t j = 0; j < len; ++j)
          opt_.kernels.axpy(s[j], vc + j * kv + g * hd, out, hd);
        const float inv = 1.0f / sum;
        for (std::size_t i = 0; i < hd; ++i) out[i] *= inv;
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
  fq::detail::thread_pool pool_;
  std::size_t n_past_ = 0;
  std::vector<float> k_cache_, v_cache_;
  std::vector<std::vector<float>> attn_norm_, ffn_norm_, scores_;
  std::vector<float> out_norm_;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, xr_;
  quantized_activations xq_;
};

}  // namespace fq::llama
