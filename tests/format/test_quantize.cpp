// SPDX-License-Identifier: MIT
// `fakequant quantize` on the shared models: only the matched tensors' data change, each value to
// the reference rounding; patterns, store policies and errors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fakequant/format/codes.hpp>
#include <fakequant/format/float_format.hpp>
#include <fakequant/format/scaling.hpp>
#include <fakequant/gguf.hpp>
#include <fakequant/gguf/blocks.hpp>
#include <fakequant/gguf/names.hpp>
#include <fakequant/quantize.hpp>
#include <limits>
#include <utility>

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
      fq::gguf::decode(ta.type, a.tensor_data(ta), 0, orig);
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

namespace {

// A copy of `src` with tensor `name` replaced by `values` stored as `type` (F32 or BF16, the
// BF16 bits being the values' round-to-nearest-even).
void write_model_with(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const std::string& name, gg::ggml_type type, std::vector<float> values) {
  const auto f = gg::file::open(src.string());
  auto b = gg::builder::from(f);
  const auto& t = f.tensor(name);
  std::vector<std::byte> bytes;
  if (type == gg::ggml_type::f32) {
    bytes.resize(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    fq::format::round_options o;
    o.overflow = fq::format::overflow::ieee;
    std::vector<std::uint16_t> h(values.size());
    for (std::size_t i = 0; i < h.size(); ++i)
      h[i] = static_cast<std::uint16_t>(fq::format::encode(fq::format::bf16, values[i], o));
    bytes.resize(h.size() * 2);
    std::memcpy(bytes.data(), h.data(), bytes.size());
  }
  b.replace_tensor(name, type, std::vector<std::uint64_t>(t.shape().begin(), t.shape().end()),
                   gg::tensor_source::bytes(bytes));
  b.write(dst);
}

std::vector<float> tensor_values(const gg::file& f, const std::string& name) {
  const auto& t = f.tensor(name);
  std::vector<float> v(t.elements);
  fq::gguf::decode(t.type, f.tensor_data(t), 0, v);
  return v;
}

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST_CASE("quantize: --scale tensor and block, one line per tensor, and bad scalings") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  fq_test::temp_dir dir;
  const auto m = model.string(), o = (dir / "o.gguf").string();
  const auto a = gg::file::open(m);
  for (const char* scale : {"tensor", "block", "block:48"}) {
    CAPTURE(std::string(scale));
    const auto r = fq_test::run_program({"quantize", m, o, "--tensors",
                                         "blk.0.attn_q.weight,blk.*.ffn_norm.weight", "--format",
                                         "fp4_e2m1", "--scale", scale});
    REQUIRE(r.status == 0);
    CHECK(count_lines(r.out) == 1 + 1 + 4);  // header, attn_q, 4 ffn_norm
    CHECK(r.err.find(std::string(scale) == "tensor" ? ": scale " : " blocks of ") !=
          std::string::npos);
    fq::quantize_options qo;
    qo.format = fq::format::fp4_e2m1;
    qo.rounding.overflow = fq::format::overflow::saturate;
    qo.scale = fq::format::scaling_from_name(scale);
    const auto b = gg::file::open(o);
    CHECK(fq::verify_fake_quantized(a, b, {"blk.0.attn_q.weight", "blk.*.ffn_norm.weight"}, qo)
              .empty());
    // Against the library call on the tensor's rows, and with scaling off it would differ.
    const auto& t = a.tensor("blk.0.attn_q.weight");
    const auto orig = tensor_values(a, "blk.0.attn_q.weight");
    const auto got = tensor_values(b, "blk.0.attn_q.weight");
    std::vector<float> want(orig.size()), plain(orig.size());
    fq::format::fake_quantize_scaled(qo.format, orig, want, qo.rounding, qo.scale, t.ne[0]);
    fq::format::fake_quantize_scaled(qo.format, orig, plain, qo.rounding, {}, t.ne[0]);
    CHECK(std::memcmp(got.data(), want.data(), got.size() * 4) == 0);
    CHECK(std::memcmp(got.data(), plain.data(), got.size() * 4) != 0);
  }
  for (const char* bad : {"block:0", "channel", "block:x"}) {
    const auto r = fq_test::run_program({"quantize", m, o, "--tensors", "blk.0.attn_q.weight",
                                         "--format", "fp8_e4m3", "--scale", bad});
    CHECK(r.status == 2);
    CHECK(r.err.find("unknown scaling") != std::string::npos);
  }
}

TEST_CASE("quantize: F16 and BF16 tensors keep their type only when exact, else --store f32") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  // BF16: a copy of the F32 model whose attn_q is BF16.
  const auto f32 = gg::file::open((models / "tl-mini-f32.gguf").string());
  write_model_with(models / "tl-mini-f32.gguf", dir / "bf16.gguf", "blk.0.attn_q.weight",
                   gg::ggml_type::bf16, tensor_values(f32, "blk.0.attn_q.weight"));
  for (const auto& model : {std::pair{(models / "tl-mini-f16.gguf"), gg::ggml_type::f16},
                            std::pair{(dir / "bf16.gguf"), gg::ggml_type::bf16}}) {
    // Plain names: clang 14 cannot capture structured bindings in CAPTURE's lambda.
    const auto& in = model.first;
    const auto type = model.second;
    CAPTURE(in.string());
    const auto a = gg::file::open(in.string());
    REQUIRE(a.tensor("blk.0.attn_q.weight").type == type);
    // fp8_e4m3 values are exact in F16 and BF16: stored back in the tensor's own type.
    auto r = fq_test::run_program({"quantize", in.string(), (dir / "same.gguf").string(),
                                   "--tensors", "blk.0.attn_q.weight", "--format", "fp8_e4m3"});
    REQUIRE(r.status == 0);
    const auto b = gg::file::open((dir / "same.gguf").string());
    CHECK(b.tensor("blk.0.attn_q.weight").type == type);
    const auto orig = tensor_values(a, "blk.0.attn_q.weight");
    const auto got = tensor_values(b, "blk.0.attn_q.weight");
    fq::format::round_options sat;
    sat.overflow = fq::format::overflow::saturate;
    std::size_t changed = 0;
    for (std::size_t k = 0; k < orig.size(); ++k) {
      REQUIRE(got[k] == fq::format::round_to(fq::format::fp8_e4m3, orig[k], sat));
      changed += got[k] != orig[k];
    }
    CHECK(changed > 0);
    // A per-tensor scale makes values that F16/BF16 cannot hold: refused, nothing written.
    r = fq_test::run_program({"quantize", in.string(), (dir / "no.gguf").string(), "--tensors",
                              "blk.0.attn_q.weight", "--format", "fp8_e4m3", "--scale", "tensor"});
    CHECK(r.status == 1);
    CHECK(r.err.find("not exact in") != std::string::npos);
    CHECK(r.err.find("use --store f32") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "no.gguf"));
    r = fq_test::run_program({"quantize", in.string(), (dir / "f32.gguf").string(), "--tensors",
                              "blk.0.attn_q.weight", "--format", "fp8_e4m3", "--scale", "tensor",
                              "--store", "f32"});
    REQUIRE(r.status == 0);
    CHECK(gg::file::open((dir / "f32.gguf").string()).tensor("blk.0.attn_q.weight").type ==
          gg::ggml_type::f32);
  }
}

TEST_CASE("quantize: NaN inputs meeting a format without a NaN code are reported") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  fq_test::temp_dir dir;
  const auto a = gg::file::open(model.string());
  auto v = tensor_values(a, "blk.0.ffn_norm.weight");
  v[3] = std::numeric_limits<float>::quiet_NaN();
  v[7] = -std::numeric_limits<float>::quiet_NaN();
  write_model_with(model, dir / "nan.gguf", "blk.0.ffn_norm.weight", gg::ggml_type::f32, v);
  const auto in = (dir / "nan.gguf").string(), out = (dir / "o.gguf").string();
  auto r = fq_test::run_program(
      {"quantize", in, out, "--tensors", "blk.0.ffn_norm.weight", "--format", "fp4_e2m1"});
  REQUIRE(r.status == 0);
  CHECK(r.err.find("blk.0.ffn_norm.weight: 2 NaN inputs") != std::string::npos);
  CHECK(r.err.find("fp4_e2m1 has no NaN code") != std::string::npos);
  CHECK(r.err.find("-0 code 0x8") != std::string::npos);
  const auto got = tensor_values(gg::file::open(out), "blk.0.ffn_norm.weight");
  CHECK(std::isnan(got[3]));
  CHECK(std::isnan(got[7]));
  r = fq_test::run_program(
      {"quantize", in, out, "--tensors", "blk.0.ffn_norm.weight", "--format", "fp8_e4m3fnuz"});
  REQUIRE(r.status == 0);
  CHECK(r.err.find("no NaN code") == std::string::npos);
}
