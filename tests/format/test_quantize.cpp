// SPDX-License-Identifier: MIT
// `fakequant quantize` on the shared models: only the matched tensors' data change, each value to
// the reference rounding; patterns, store policies and errors.
#include <cstring>
#include <fakequant/format/blocks.hpp>
#include <fakequant/format/float_format.hpp>
#include <fakequant/gguf.hpp>
#include <fakequant/gguf/names.hpp>
#include <fakequant/quantize.hpp>

#include "support.hpp"

namespace gg = fq::gguf;

TEST_CASE(
    "quantize: output equals input but for the matched tensors, each rounded as the reference") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  for (const char* name : {"tl-mini-f32.gguf", "tl-mini-f16.gguf", "tl-mini-q8_0.gguf"}) {
    CAPTURE(std::string(name));
    const auto in = models / name, out = dir / "out.gguf";
    const auto r = fq_test::run_program({"quantize", in.string(), out.string(), "--tensors",
                                         "blk.*.ffn_norm.weight,blk.[0-1].attn_q.weight",
                                         "--format", "fp8_e4m3", "--store", "f32"});
    REQUIRE(r.status == 0);
    CHECK(r.out.find("blk.3.ffn_norm.weight") != std::string::npos);
    const auto a = gg::file::open(in.string()), b = gg::file::open(out.string());
    REQUIRE(a.tensors().size() == b.tensors().size());
    CHECK(a.metadata().size() == b.metadata().size());
    std::size_t matched = 0;
    for (std::size_t i = 0; i < a.tensors().size(); ++i) {
      const auto& ta = a.tensors()[i];
      const auto& tb = b.tensors()[i];
      CHECK(ta.name == tb.name);
      const bool m = gg::glob_match("blk.*.ffn_norm.weight", ta.name) ||
                     gg::glob_match("blk.[0-1].attn_q.weight", ta.name);
      if (!m) {
        CHECK(ta.type == tb.type);
        const auto da = a.tensor_data(ta), db = b.tensor_data(tb);
        CHECK(std::memcmp(da.data(), db.data(), da.size()) == 0);
        continue;
      }
      ++matched;
      CHECK(tb.type == gg::ggml_type::f32);
      std::vector<float> orig(ta.elements), got(tb.elements);
      fq::format::decode(ta.type, a.tensor_data(ta), 0, orig);
      std::memcpy(got.data(), b.tensor_data(tb).data(), tb.bytes);
      fq::format::round_options opt;
      opt.overflow = fq::format::overflow::saturate;
      for (std::size_t k = 0; k < orig.size(); ++k)
        REQUIRE(got[k] == fq::format::round_to(fq::format::fp8_e4m3, orig[k], opt));
    }
    CHECK(matched == 6);
  }
}

TEST_CASE("quantize: F32 and F16 tensors keep their type by default") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  auto r = fq_test::run_program({"quantize", (models / "tl-mini-f16.gguf").string(),
                                 (dir / "o.gguf").string(), "--tensors",
                                 "blk.0.attn_q.weight,blk.0.ffn_norm.weight", "--format", "bf16"});
  REQUIRE(r.status == 0);
  const auto b = gg::file::open((dir / "o.gguf").string());
  CHECK(b.tensor("blk.0.attn_q.weight").type == gg::ggml_type::f16);
  CHECK(b.tensor("blk.0.ffn_norm.weight").type == gg::ggml_type::f32);
  // Block-quantized tensors need --store f32.
  r = fq_test::run_program({"quantize", (models / "tl-mini-q8_0.gguf").string(),
                            (dir / "p.gguf").string(), "--tensors", "blk.0.attn_q.weight",
                            "--format", "bf16"});
  CHECK(r.status == 1);
  CHECK(r.err.find("need --store f32") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "p.gguf"));
}

TEST_CASE("quantize: bad patterns, formats and options are clear errors") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  fq_test::temp_dir dir;
  const auto m = model.string(), o = (dir / "o.gguf").string();
  auto r = fq_test::run_program(
      {"quantize", m, o, "--tensors", "blk.0.ffn_nrm.weight", "--format", "bf16"});
  CHECK(r.status == 1);
  CHECK(r.err.find("no tensor matches 'blk.0.ffn_nrm.weight' (closest: blk.0.ffn_norm.weight") !=
        std::string::npos);
  r = fq_test::run_program(
      {"quantize", m, o, "--tensors", "blk.0.ffn_norm.weight", "--format", "fp7"});
  CHECK(r.status == 1);
  CHECK(r.err.find("unknown format 'fp7'") != std::string::npos);
  r = fq_test::run_program({"quantize", m, o, "--tensors", "blk.0.ffn_norm.weight", "--format",
                            "fp4_e2m1", "--overflow", "ieee"});
  CHECK(r.status == 1);
  CHECK(r.err.find("only --overflow saturate") != std::string::npos);
  CHECK(fq_test::run_program({"quantize", m, o, "--format", "bf16"}).status == 2);
  CHECK(fq_test::run_program(
            {"quantize", m, m, "--tensors", "blk.0.ffn_norm.weight", "--format", "bf16"})
            .status == 1);
  CHECK_FALSE(std::filesystem::exists(o));
}

TEST_CASE("names: globs with classes, and the closest names") {
  CHECK(gg::glob_match("blk.*.ffn_norm.weight", "blk.12.ffn_norm.weight"));
  CHECK(gg::glob_match("blk.[0-3].attn_*", "blk.2.attn_q.weight"));
  CHECK_FALSE(gg::glob_match("blk.[0-3].attn_*", "blk.4.attn_q.weight"));
  CHECK(gg::glob_match("blk.[!0].attn_?.weight", "blk.1.attn_k.weight"));
  CHECK_FALSE(gg::glob_match("blk.[!0].attn_?.weight", "blk.0.attn_k.weight"));
  CHECK(gg::glob_match("output.weight", "output.weight"));
  CHECK_FALSE(gg::glob_match("output", "output.weight"));
  CHECK(gg::glob_match("*", ""));
  CHECK(gg::split_patterns("a,,b,") == std::vector<std::string>{"a", "b"});
  const std::vector<std::string> names{"token_embd.weight", "output.weight",
                                       "blk.0.ffn_norm.weight"};
  CHECK(gg::closest_names("blk.0.ffn_nrm.weight", names, 1).front() == "blk.0.ffn_norm.weight");
}

TEST_CASE(
    "quantize: verification catches one byte flipped outside the targets, and a wrong target "
    "value") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  fq_test::temp_dir dir;
  const auto f = gg::file::open(model.string());
  fq::quantize_options o;
  o.rounding.overflow = o.format.default_overflow();
  const std::vector<std::string> patterns{"blk.0.ffn_norm.weight"};
  auto b = gg::builder::from(f);
  fq::fake_quantize_tensors(f, b, patterns, o);
  b.write(dir / "fq.gguf");
  {
    const auto g = gg::file::open((dir / "fq.gguf").string());
    CHECK(fq::verify_fake_quantized(f, g, patterns, o).empty());
  }
  auto bytes = fq_test::read_bytes(dir / "fq.gguf");
  const auto g0 = gg::file::open((dir / "fq.gguf").string());
  const auto outside = g0.tensor("blk.1.attn_q.weight").file_offset + 5;
  const auto inside = g0.tensor("blk.0.ffn_norm.weight").file_offset + 1;
  auto flipped = bytes;
  flipped[outside] = static_cast<char>(flipped[outside] ^ 0x01);
  fq_test::write_bytes(dir / "flip1.gguf", flipped.data(), flipped.size());
  const auto p1 =
      fq::verify_fake_quantized(f, gg::file::open((dir / "flip1.gguf").string()), patterns, o);
  REQUIRE(p1.size() == 1);
  CHECK(p1[0].find("untouched tensor 'blk.1.attn_q.weight'") != std::string::npos);
  flipped = bytes;
  flipped[inside] = static_cast<char>(flipped[inside] ^ 0x01);
  fq_test::write_bytes(dir / "flip2.gguf", flipped.data(), flipped.size());
  const auto p2 =
      fq::verify_fake_quantized(f, gg::file::open((dir / "flip2.gguf").string()), patterns, o);
  REQUIRE(p2.size() == 1);
  CHECK(p2[0].find("not the format's rounding") != std::string::npos);
}
