// SPDX-License-Identifier: MIT
// Loading a model: every missing or malformed piece is named in the error.
#include <fakequant/gguf.hpp>
#include <fakequant/llama/context.hpp>
#include <fakequant/llama/synth.hpp>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {

// A tiny synthesized model, rewritten with one change.
std::filesystem::path variant(const fq_test::temp_dir& dir, const std::string& name,
                              const std::function<void(gg::builder&, const gg::file&)>& change) {
  const auto base = dir / "base.gguf";
  if (!std::filesystem::exists(base)) fq::llama::synth(fq::llama::synth_preset("tiny"), {}, base);
  const auto f = gg::file::open(base.string());
  auto b = gg::builder::from(f);
  change(b, f);
  const auto out = dir / name;
  b.write(out);
  return out;
}

std::string load_error(const std::filesystem::path& p) {
  const auto f = gg::file::open(p.string());
  try {
    (void)fq::llama::model::load(f);
  } catch (const fq::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("llama model: a synthesized tiny model loads with the preset's hyper-parameters") {
  fq_test::temp_dir dir;
  const auto p = variant(dir, "same.gguf", [](gg::builder&, const gg::file&) {});
  const auto f = gg::file::open(p.string());
  const auto m = fq::llama::model::load(f);
  const auto& hp = m.params();
  CHECK(hp.n_embd == 64);
  CHECK(hp.n_layer == 2);
  CHECK(hp.n_head == 4);
  CHECK(hp.n_head_kv == 2);
  CHECK(hp.n_ff == 192);
  CHECK(hp.n_vocab == 512);
  CHECK(hp.head_dim() == 16);
  // And runs: finite logits for a few tokens.
  fq::llama::context ctx(m, 32);
  std::vector<float> logits;
  const std::vector<std::int32_t> toks{1, 300, 301, 302};
  ctx.eval(toks, 0, logits);
  CHECK(logits.size() == 4 * 512);
  for (float v : logits) REQUIRE(std::isfinite(v));
}

TEST_CASE("llama model: missing tensor, wrong shape, unsupported architecture and type are named") {
  fq_test::temp_dir dir;
  CHECK(load_error(variant(dir, "missing.gguf", [](gg::builder& b, const gg::file&) {
          b.remove_tensor("blk.1.ffn_up.weight");
        })).find("missing tensor 'blk.1.ffn_up.weight'") != std::string::npos);

  const std::vector<float> wrong(64 * 64);
  CHECK(
      load_error(variant(dir, "shape.gguf", [&](gg::builder& b, const gg::file&) {
        b.replace_tensor("blk.0.attn_k.weight", gg::ggml_type::f32, {64, 64},
                         gg::tensor_source::bytes(std::as_bytes(std::span(wrong))));
      })).find("'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]") != std::string::npos);

  CHECK(load_error(variant(dir, "arch.gguf", [](gg::builder& b, const gg::file&) {
          b.set("general.architecture", gg::value::of("falcon"));
        })).find("unsupported architecture 'falcon'") != std::string::npos);

  const std::vector<std::byte> i8(64 * 32);
  CHECK(load_error(variant(dir, "type.gguf", [&](gg::builder& b, const gg::file&) {
          b.replace_tensor("blk.0.attn_v.weight", gg::ggml_type::i8, {64, 32},
                           gg::tensor_source::bytes(i8));
        })).find("'blk.0.attn_v.weight' has type I8") != std::string::npos);

  CHECK(load_error(variant(dir, "key.gguf", [](gg::builder& b, const gg::file&) {
          b.erase("llama.block_count");
        })).find("missing metadata key 'llama.block_count'") != std::string::npos);

  CHECK(load_error(variant(dir, "heads.gguf", [](gg::builder& b, const gg::file&) {
          b.set("llama.attention.head_count_kv", gg::value::of(std::uint32_t{3}));
        })).find("head_count_kv") != std::string::npos);
}

TEST_CASE("llama model: a NaN in the weights is reported with the layer where it first appears") {
  fq_test::temp_dir dir;
  std::vector<float> w(64, 1.0f);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  const auto p = variant(dir, "nan.gguf", [&](gg::builder& b, const gg::file&) {
    b.replace_tensor("blk.1.ffn_norm.weight", gg::ggml_type::f32, {64},
                     gg::tensor_source::bytes(std::as_bytes(std::span(w))));
  });
  const auto f = gg::file::open(p.string());
  const auto m = fq::llama::model::load(f);
  fq::llama::context ctx(m, 16);
  std::vector<float> logits;
  const std::vector<std::int32_t> toks{1, 300};
  try {
    ctx.eval(toks, 0, logits);
    FAIL("no error");
  } catch (const fq::error& e) {
    CHECK(e.code() == fq::errc::numeric);
    CHECK(std::string(e.what()).find("NaN in the activations after layer 1 ffn_gate/up") !=
          std::string::npos);
  }
}
