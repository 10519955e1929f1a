// SPDX-License-Identifier: MIT
// A LLaMA-architecture model (TinyLlama, the Llama-2 family) read from a validated GGUF file:
// hyper-parameters from metadata and weight views into the file's mapping. Nothing is converted or
// copied here; the kernels decode blocks as they go.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../gguf/blocks.hpp"
#include "../gguf/file.hpp"

namespace fq::llama {

/// Hyper-parameters, with llama.cpp's defaults where a key is optional.
struct hparams {
  std::uint32_t n_vocab = 0;
  std::uint32_t n_embd = 0;
  std::uint32_t n_layer = 0;
  std::uint32_t n_ff = 0;
  std::uint32_t n_head = 0;
  std::uint32_t n_head_kv = 0;  ///< grouped-query attention when < n_head
  std::uint32_t n_rot = 0;      ///< rotated dimensions per head (rope.dimension_count)
  std::uint32_t n_ctx_train = 0;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;

  std::uint32_t head_dim() const noexcept { return n_embd / n_head; }
  std::uint32_t n_embd_kv() const noexcept { return head_dim() * n_head_kv; }
};

/// A weight: its type and raw data, viewed as `rows` rows of `cols` elements (ggml's ne[1] ×
/// ne[0]).
struct weight {
  std::string_view name;
  gguf::ggml_type type = gguf::ggml_type::f32;
  std::span<const std::byte> data;
  std::uint64_t cols = 0;  ///< ne[0], elements per row (the reduction dimension of a product)
  std::uint64_t rows = 0;  ///< ne[1]
  std::size_t row_bytes() const noexcept { return data.size() / rows; }
  const std::byte* row(std::uint64_t r) const noexcept { return data.data() + r * row_bytes(); }
};

struct layer {
  weight attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};

/// The weight types the evaluator reads (decoded block by block inside the kernels).
constexpr bool is_supported_weight_type(gguf::ggml_type t) noexcept {
  using gguf::ggml_type;
  switch (t) {
    case ggml_type::f32:
    case ggml_type::f16:
    case ggml_type::bf16:
    case ggml_type::q8_0:
    case ggml_type::q4_0:
    case ggml_type::q4_k:
    case ggml_type::q5_k:
    case ggml_type::q6_k:
      return gguf::can_decode(t);
    default:
      return false;
  }
}

class model {
 public:
  /// Reads hyper-parameters and checks every tensor the forward pass needs: present, of the shape
  /// the hyper-parameters imply, of a supported type. `f` must outlive the model.
  static model load(const gguf::file& f) {
    model m;
    m.file_ = &f;
    const auto arch = f.find<std::string_view>("general.architecture");
    if (!arch) fail(f, "missing metadata key 'general.architecture'");
    if (*arch != "llama")
      throw error(errc::unsupported, f.path(),
                  "unsupported architecture '" + std::string(*arch) +
                      "' (the built-in evaluator runs general.architecture = llama)");
    auto& hp = m.hp_;
    hp.n_layer = uint_key(f, "llama.block_count");
    hp.n_embd = uint_key(f, "llama.embedding_length");
    hp.n_ff = uint_key(f, "llama.feed_forward_length");
    hp.n_head = uint_key(f, "llama.attention.head_count");
    hp.n_head_kv = uint_key(f, "llama.attention.head_count_kv", hp.n_head);
    hp.n_ctx_train = uint_key(f, "llama.context_length", 0);
    if (hp.n_head == 0 || hp.n_embd % hp.n_head != 0)
      fail(f, "llama.embedding_length " + std::to_string(hp.n_embd) +
                  " is not a multiple of llama.attention.head_count " + std::to_string(hp.n_head));
    if (hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0)
      fail(f, "llama.attention.head_count " + std::to_string(hp.n_head) +
                  " is not a multiple of llama.attention.head_count_kv " +
                  std::to_string(hp.n_head_kv));
    hp.n_rot = uint_key(f, "llama.rope.dimension_count", hp.head_dim());
    if (hp.n_rot > hp.head_dim() || hp.n_rot % 2 != 0)
      fail(f, "llama.rope.dimension_count " + std::to_string(hp.n_rot) +
                  " must be even and at most the head size " + std::to_string(hp.head_dim()));
    hp.rope_freq_base = float_key(f, "llama.rope.freq_base", 10000.0f);
    hp.rms_eps = float_key(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (f.find_entry("llama.rope.scaling.type") || f.find_tensor("rope_freqs.weight")) {
      const auto* t = f.find_entry("llama.rope.scaling.type");
      const auto v = t ? t->value.get_string() : std::nullopt;
      if (!v || *v != "none")
        throw error(errc::unsupported, f.path(),
                    "RoPE scaling (llama.rope.scaling.type / rope_freqs.weight) is not supported "
                    "by the built-in evaluator");
    }

    const std::uint64_t d = hp.n_embd, kv = hp.n_embd_kv(), ff = hp.n_ff;
    m.tok_embd_ = m.matrix(f, "token_embd.weight", d, 0);
    hp.n_vocab = static_cast<std::uint32_t>(m.tok_embd_.rows);
    m.output_norm_ = m.vector(f, "output_norm.weight", d);
    m.output_ = f.find_tensor("output.weight") ? m.matrix(f, "output.weight", d, hp.n_vocab)
                                               : m.tok_embd_;  // tied embeddings
    for (std::uint32_t i = 0; i < hp.n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      layer l;
      l.attn_norm = m.vector(f, p + "attn_norm.weight", d);
      l.wq = m.matrix(f, p + "attn_q.weight", d, d);
      l.wk = m.matrix(f, p + "attn_k.weight", d, kv);
      l.wv = m.matrix(f, p + "attn_v.weight", d, kv);
      l.wo = m.matrix(f, p + "attn_output.weight", d, d);
      l.ffn_norm = m.vector(f, p + "ffn_norm.weight", d);
      l.w_gate = m.matrix(f, p + "ffn_gate.weight", d, ff);
      l.w_up = m.matrix(f, p + "ffn_up.weight", d, ff);
      l.w_down = m.matrix(f, p + "ffn_down.weight", ff, d);
      m.layers_.push_back(l);
    }
    return m;
  }

  const hparams& params() const noexcept { return hp_; }
  const gguf::file& file() const noexcept { return *file_; }
  const weight& tok_embd() const noexcept { return tok_embd_; }
  const weight& output_norm() const noexcept { return output_norm_; }
  const weight& output() const noexcept { return output_; }
  const std::vector<layer>& layers() const noexcept { return layers_; }

 private:
  [[noreturn]] static void fail(const gguf::file& f, const std::string& msg) {
    throw error(errc::invalid_argument, f.path(), msg);
  }
  static std::uint32_t uint_key(const gguf::file& f, std::string_view key,
                                std::optional<std::uint32_t> fallback = std::nullopt) {
    const auto* e = f.find_entry(key);
    if (!e) {
      if (fallback) return *fallback;
      throw error(errc::not_found, f.path(), "missing metadata key '" + std::string(key) + "'");
    }
    const auto v = e->value.get_integer();
    if (!v || *v < 0 || *v > 0x7fffffff)
      throw error(errc::type_mismatch, f.path(), e->file_offset,
                  "metadata key '" + std::string(key) + "' must be a non-negative integer");
    if (*v == 0 && !fallback)
      throw error(errc::invalid_argument, f.path(), e->file_offset,
                  "metadata key '" + std::string(key) + "' is zero");
    return static_cast<std::uint32_t>(*v);
  }
  static float float_key(const gguf::file& f, std::string_view key, float fallback) {
    const auto* e = f.find_entry(key);
    if (!e) return fallback;
    if (auto v = e->value.get<float>()) return *v;
    if (auto v = e->value.get<double>()) return static_cast<float>(*v);
    throw error(errc::type_mismatch, f.path(), e->file_offset,
                "metadata key '" + std::string(key) + "' must be a float");
  }

  // A 2-D weight of ne = [cols, rows]; rows 0 means "any" (the vocabulary, read from the shape).
  weight matrix(const gguf::file& f, const std::string& name, std::uint64_t cols,
                std::uint64_t rows) const {
    const auto* t = f.find_tensor(name);
    if (!t) throw error(errc::not_found, f.path(), "missing tensor '" + name + "'");
    if (t->n_dims != 2 || t->ne[0] != cols || (rows != 0 && t->ne[1] != rows))
      throw error(errc::bad_tensor, f.path(), t->info_offset,
                  "tensor '" + name + "' has shape " + shape_text(*t) + ", expected [" +
                      std::to_string(cols) + ", " + (rows ? std::to_string(rows) : "n_vocab") +
                      "]");
    return checked(f, *t);
  }
  weight vector(const gguf::file& f, const std::string& name, std::uint64_t n) const {
    const auto* t = f.find_tensor(name);
    if (!t) throw error(errc::not_found, f.path(), "missing tensor '" + name + "'");
    if (t->n_dims != 1 || t->ne[0] != n)
      throw error(errc::bad_tensor, f.path(), t->info_offset,
                  "tensor '" + name + "' has shape " + shape_text(*t) + ", expected [" +
                      std::to_string(n) + "]");
    return checked(f, *t);
  }
  static weight checked(const gguf::file& f, const gguf::tensor_info& t) {
    if (!is_supported_weight_type(t.type))
      throw error(errc::unsupported, f.path(), t.info_offset,
                  "tensor '" + std::string(t.name) + "' has type " +
                      std::string(gguf::type_name(t.type)) +
                      ", which the built-in evaluator does not read (F32, F16, BF16, Q8_0, Q4_0, "
                      "Q4_K, Q5_K, Q6_K)");
    return {t.name, t.type, f.tensor_data(t), t.ne[0], t.ne[1]};
  }
  static std::string shape_text(const gguf::tensor_info& t) {
    std::string s = "[";
    for (std::uint32_t i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
    return s + "]";
  }

  const gguf::file* file_ = nullptr;
  hparams hp_;
  weight tok_embd_, output_norm_, output_;
  std::vector<layer> layers_;
};

}  // namespace fq::llama
