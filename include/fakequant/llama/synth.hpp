// SPDX-License-Identifier: MIT
// Random-weight LLaMA models for demos, tests and benchmarks: TinyLlama-1.1B's exact tensor names,
// shapes and metadata, or a tiny model; a generated SentencePiece-style vocabulary (byte fallback,
// so any UTF-8 text tokenizes) or one copied from another GGUF file. Weights are produced while the
// file is written, never held in memory as a whole.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../format/float_format.hpp"
#include "../gguf/file.hpp"
#include "../gguf/writer.hpp"
#include "kernels.hpp"

namespace fq::llama {

struct synth_shape {
  std::string name;
  std::uint32_t n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, n_ctx;
};

/// The presets of `fakequant synth`.
inline synth_shape synth_preset(std::string_view name) {
  if (name == "tinyllama-1.1b")
    return {"TinyLlama-1.1B (random weights)", 32000, 2048, 22, 5632, 32, 4, 2048};
  if (name == "tiny") return {"tiny (random weights)", 512, 64, 2, 192, 4, 2, 256};
  throw error(errc::invalid_argument, "",
              "unknown preset '" + std::string(name) + "' (known: tiny, tinyllama-1.1b)");
}

struct synth_options {
  gguf::ggml_type type = gguf::ggml_type::f16;  ///< matrices: F32, F16 or Q8_0; norms stay F32
  std::uint64_t seed = 42;
  std::string vocab_path;  ///< copy tokenizer.* from this GGUF; empty: generate
};

namespace detail {

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// An approximately normal value (Irwin–Hall of four uniforms), deterministic in (key, index).
inline float synth_value(std::uint64_t key, std::uint64_t i) noexcept {
  const std::uint64_t a = splitmix64(key ^ (i * 2 + 1)),
                      b = splitmix64(key + i * 0x632be59bd9b4e019ull);
  const double u = static_cast<double>(a & 0xffffffffu) + static_cast<double>(a >> 32) +
                   static_cast<double>(b & 0xffffffffu) + static_cast<double>(b >> 32);
  return static_cast<float>((u / 4294967296.0 - 2.0) * 1.7320508075688772);
}

// Encodes `n` values (a multiple of the type's block) from `value(i)` into `out`.
template <class F>
void encode_values(gguf::ggml_type type, std::uint64_t first, std::size_t n, F&& value,
                   std::byte* out) {
  switch (type) {
    case gguf::ggml_type::f32:
      for (std::size_t i = 0; i < n; ++i) {
        const float v = value(first + i);
        std::memcpy(out + 4 * i, &v, 4);
      }
      break;
    case gguf::ggml_type::f16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = format::to_f16_bits(value(first + i));
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    case gguf::ggml_type::q8_0:
      for (std::size_t b = 0; b < n / 32; ++b) {
        float v[32], amax = 0.0f;
        for (int j = 0; j < 32; ++j) {
          v[j] = value(first + b * 32 + static_cast<std::size_t>(j));
          amax = std::max(amax, std::fabs(v[j]));
        }
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const std::uint16_t dh = format::to_f16_bits(d);
        std::byte* blk = out + b * 34;
        std::memcpy(blk, &dh, 2);
        for (int j = 0; j < 32; ++j)
          blk[2 + j] = static_cast<std::byte>(static_cast<std::int8_t>(std::round(v[j] * id)));
      }
      break;
    default:
      throw error(errc::unsupported, "", "synth writes F32, F16 or Q8_0 matrices");
  }
}

// The generated vocabulary: control tokens, the 256 byte tokens, then scored pieces.
inline void generated_vocab(std::uint32_t n_vocab, std::vector<std::string>& pieces,
                            std::vector<float>& scores, std::vector<std::int32_t>& types) {
  const std::string space = "\xe2\x96\x81";  // ▁, SentencePiece's word boundary
  auto add = [&](std::string p, std::int32_t type) {
    if (pieces.size() >= n_vocab) return;
    pieces.push_back(std::move(p));
    scores.push_back(type == 1 ? -static_cast<float>(pieces.size()) : 0.0f);
    types.push_back(type);
  };
  add("<unk>", 2);
  add("<s>", 3);
  add("</s>", 3);
  static constexpr char hex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 6);
  add(space, 1);
  for (char c = 'a'; c <= 'z'; ++c) add(space + c, 1);
  for (int c = 33; c < 127; ++c) add(std::string(1, static_cast<char>(c)), 1);
  for (char c = 'A'; c <= 'Z'; ++c) add(space + c, 1);
  for (char c = '0'; c <= '9'; ++c) add(space + c, 1);
  // Then letter pairs and triples, with and without the word boundary, until the size is reached.
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
  for (char a : letters)
    for (char b : letters) {
      add(std::string{a, b}, 1);
      add(space + a + b, 1);
    }
  for (char a : letters)
    for (char b : letters)
      for (char c : letters) {
        add(std::string{a, b, c}, 1);
        add(space + a + b + c, 1);
      }
  for (std::uint32_t i = 0; pieces.size() < n_vocab; ++i)
    add("<extra_" + std::to_string(i) + ">", 4);
}

}  // namespace detail

namespace detail {

/// The llama.* hyper-parameters and general.* keys of `shape`.
inline void set_synth_hparams(gguf::builder& b, const synth_shape& shape, gguf::ggml_type type) {
  using gguf::ggml_type;
  using gguf::value;
  const std::uint32_t hd = shape.n_embd / shape.n_head;
  b.set("general.architecture", value::of("llama"));
  b.set("general.name", value::of(shape.name));
  b.set("llama.context_length", value::of(shape.n_ctx));
  b.set("llama.embedding_length", value::of(shape.n_embd));
  b.set("llama.block_count", value::of(shape.n_layer));
  b.set("llama.feed_forward_length", value::of(shape.n_ff));
  b.set("llama.rope.dimension_count", value::of(hd));
  b.set("llama.attention.head_count", value::of(shape.n_head));
  b.set("llama.attention.head_count_kv", value::of(shape.n_head_kv));
  b.set("llama.attention.layer_norm_rms_epsilon", value::of(1e-5f));
  b.set("llama.rope.freq_base", value::of(10000.0f));
  const std::uint32_t file_type = type == ggml_type::f32 ? 0 : type == ggml_type::f16 ? 1 : 7;
  b.set("general.file_type", value::of(file_type));
}

/// The tokenizer.* keys: copied from opt.vocab_path (kept open in `vocab_file`, whose token
/// count is returned) or a generated vocabulary of `n_vocab` pieces.
inline std::uint32_t set_synth_vocab(gguf::builder& b, const synth_options& opt,
                                     std::uint32_t n_vocab, std::optional<gguf::file>& vocab_file) {
  using gguf::value;
  if (!opt.vocab_path.empty()) {
    vocab_file.emplace(gguf::file::open(opt.vocab_path));
    const auto* tokens = vocab_file->find_entry("tokenizer.ggml.tokens");
    const auto model = vocab_file->find<std::string_view>("tokenizer.ggml.model");
    if (!tokens || !model || *model != "llama")
      throw error(errc::invalid_argument, opt.vocab_path,
                  "--vocab needs a GGUF with a llama (SentencePiece) tokenizer");
    for (const auto& e : vocab_file->metadata())
      if (e.key.starts_with("tokenizer.")) b.set(e.key, e.value);
    return static_cast<std::uint32_t>(tokens->value.size());
  }
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  generated_vocab(n_vocab, pieces, scores, types);
  b.set("tokenizer.ggml.model", value::of("llama"));
  b.set("tokenizer.ggml.pre", value::of("default"));
  b.set("tokenizer.ggml.tokens", value::string_array<std::string>(pieces));
  b.set("tokenizer.ggml.scores", value::array<float>(scores));
  b.set("tokenizer.ggml.token_type", value::array<std::int32_t>(types));
  b.set("tokenizer.ggml.bos_token_id", value::of(std::uint32_t{1}));
  b.set("tokenizer.ggml.eos_token_id", value::of(std::uint32_t{2}));
  b.set("tokenizer.ggml.unknown_token_id", value::of(std::uint32_t{0}));
  b.set("tokenizer.ggml.add_bos_token", value::of(true));
  b.set("tokenizer.ggml.add_eos_token", value::of(false));
  return n_vocab;
}

/// Adds the tensors of `shape`, produced while the file is written: weight matrices with values
/// of standard deviation about 1/sqrt(fan-in) in `opt.type`, norms near 1 in F32.
inline void add_synth_tensors(gguf::builder& b, const synth_shape& shape, const synth_options& opt,
                              std::uint32_t n_vocab) {
  using gguf::ggml_type;
  std::uint64_t tensor_key = opt.seed;
  auto matrix = [&](const std::string& name, std::uint32_t cols, std::uint32_t rows, float sigma,
                    ggml_type type) {
    const std::uint64_t key = splitmix64(++tensor_key);
    const auto bytes = *gguf::tensor_bytes(type, std::vector<std::uint64_t>{cols, rows});
    const std::uint64_t per_elem_block = gguf::block_elements(type),
                        block_bytes = gguf::block_bytes(type);
    b.add_tensor(
        name, type, {cols, rows},
        gguf::tensor_source::produced(bytes, [=](std::uint64_t off, std::span<std::byte> dst) {
          // Chunks arrive at block boundaries: 4 MiB is a multiple of every block size used.
          const std::uint64_t first = off / block_bytes * per_elem_block;
          const std::size_t count = dst.size() / block_bytes * per_elem_block;
          encode_values(
              type, first, count, [&](std::uint64_t i) { return sigma * synth_value(key, i); },
              dst.data());
        }));
  };
  auto norm = [&](const std::string& name, std::uint32_t n) {
    const std::uint64_t key = splitmix64(++tensor_key);
    b.add_tensor(name, ggml_type::f32, {n},
                 gguf::tensor_source::produced(
                     std::uint64_t{n} * 4, [=](std::uint64_t off, std::span<std::byte> dst) {
                       encode_values(
                           ggml_type::f32, off / 4, dst.size() / 4,
                           [&](std::uint64_t i) { return 1.0f + 0.1f * synth_value(key, i); },
                           dst.data());
                     }));
  };
  const std::uint32_t hd = shape.n_embd / shape.n_head;
  const std::uint32_t d = shape.n_embd, kv = hd * shape.n_head_kv, ff = shape.n_ff;
  const float s_in = 1.0f / std::sqrt(static_cast<float>(d)),
              s_ff = 1.0f / std::sqrt(static_cast<float>(ff));
  matrix("token_embd.weight", d, n_vocab, 1.0f, opt.type);
  for (std::uint32_t l = 0; l < shape.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight", d);
    matrix(p + "ffn_down.weight", ff, d, s_ff, opt.type);
    matrix(p + "ffn_gate.weight", d, ff, s_in, opt.type);
    matrix(p + "ffn_up.weight", d, ff, s_in, opt.type);
    norm(p + "ffn_norm.weight", d);
    matrix(p + "attn_k.weight", d, kv, s_in, opt.type);
    matrix(p + "attn_output.weight", d, d, s_in, opt.type);
    matrix(p + "attn_q.weight", d, d, s_in, opt.type);
    matrix(p + "attn_v.weight", d, kv, s_in, opt.type);
  }
  norm("output_norm.weight", d);
  matrix("output.weight", d, n_vocab, s_in, opt.type);
}

}  // namespace detail

/// Writes a random-weight model of `shape` to `out`.
inline void synth(const synth_shape& shape, const synth_options& opt,
                  const std::filesystem::path& out) {
  using gguf::ggml_type;
  if (opt.type != ggml_type::f32 && opt.type != ggml_type::f16 && opt.type != ggml_type::q8_0)
    throw error(errc::invalid_argument, "", "synth --type must be f32, f16 or q8_0");
  gguf::builder b;
  detail::set_synth_hparams(b, shape, opt.type);
  std::optional<gguf::file> vocab_file;
  const std::uint32_t n_vocab = detail::set_synth_vocab(b, opt, shape.n_vocab, vocab_file);
  detail::add_synth_tensors(b, shape, opt, n_vocab);
  if (vocab_file) b.add_input(vocab_file->mapping());
  b.write(out);
}

}  // namespace fq::llama
