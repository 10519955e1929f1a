// SPDX-License-Identifier: MIT
// fakequant diff: a model against itself, against a copy with one tensor changed (checked against
// the independent figures in the tl-mini reference), against a file of another structure; the JSON
// is the same bytes for any thread count. Also the selection of tensors by name patterns.
#include <bit>
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "support.hpp"

namespace {

using nlohmann::json;

json parse(const std::string& s) { return json::parse(s); }

std::string slurp(const fq_test::fs::path& p) {
  auto b = fq_test::read_bytes(p);
  return {b.begin(), b.end()};
}

// Round to nearest even bfloat16 and back (finite inputs).
float to_bf16(float x) {
  const auto u = std::bit_cast<std::uint32_t>(x);
  return std::bit_cast<float>((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

}  // namespace

TEST_CASE("stats: diff selects tensors with the gguf name patterns") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  // Brackets and several comma-separated patterns: the syntax of gguf/names.hpp, as in quantize.
  const auto r = fq_test::run_program({"diff", (dir / "tl-mini-f32.gguf").string(),
                                       (dir / "tl-mini-q8_0.gguf").string(), "--json", "--tensors",
                                       "blk.[0-1].attn_q.weight,blk.3.ffn_u?.weight"});
  CHECK(r.status == 1);  // the types differ
  const auto j = parse(r.out);
  std::vector<std::string> names;
  for (const auto& t : j["tensors"]) names.push_back(t["name"]);
  CHECK(names == std::vector<std::string>{"blk.0.attn_q.weight", "blk.1.attn_q.weight",
                                          "blk.3.ffn_up.weight"});
}

TEST_CASE("stats: diff of a model against itself reports no difference") {
  const auto m = fq_test::require_shared("testdata/models/kq-q4_k_m.gguf");
  if (m.empty()) return;
  auto r = fq_test::run_program({"diff", m.string(), m.string(), "--json"});
  REQUIRE(r.status == 0);
  auto j = parse(r.out);
  CHECK(j["metadata_identical"] == true);
  CHECK(j["structure_identical"] == true);
  CHECK(j["tensors"].empty());
  CHECK(j["epsilon"] == 1e-8);
  r = fq_test::run_program({"diff", m.string(), m.string(), "--json", "--all"});
  REQUIRE(r.status == 0);
  j = parse(r.out);
  REQUIRE(j["tensors"].size() == fq::gguf::file::open(m.string()).tensors().size());
  for (const auto& t : j["tensors"]) {
    CHECK(t["changed"] == 0);
    CHECK(t["max_abs_diff"] == 0.0);
    CHECK(t["mean_rel_diff"] == 0.0);
    CHECK(t["distribution_change"]["wasserstein1"] == 0.0);
    CHECK(t["before"] == t["after"]);
  }
}

TEST_CASE("stats: diff finds exactly the one changed tensor, with the reference figures") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  const auto base_path = dir / "tl-mini-f32.gguf";
  const auto base = fq::gguf::file::open(base_path.string());
  const auto& t = base.tensor("blk.0.ffn_norm.weight");
  std::vector<float> v(t.elements);
  std::memcpy(v.data(), base.tensor_data(t).data(), v.size() * sizeof(float));
  for (auto& x : v) x = to_bf16(x);
  fq_test::temp_dir tmp;
  const auto changed = tmp / "bf16-blk0-ffn_norm.gguf";
  {
    auto b = fq::gguf::builder::from(base);
    b.replace_tensor(t.name, t.type, {t.shape().begin(), t.shape().end()},
                     fq::gguf::tensor_source::bytes(std::as_bytes(std::span(v))));
    b.write(changed);
  }
  const auto out = tmp / "numerical_analysis.json";
  const auto r = fq_test::run_program({"diff", base_path.string(), changed.string(), "--output",
                                       out.string(), "--svg", (tmp / "svg").string()});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("blk.0.ffn_norm.weight") != std::string::npos);
  const auto j = parse(slurp(out));
  CHECK(j["structure_identical"] == true);
  CHECK(j["metadata_identical"] == true);
  REQUIRE(j["tensors"].size() == 1);
  const auto& d = j["tensors"][0];
  CHECK(d["name"] == "blk.0.ffn_norm.weight");
  CHECK(fq_test::fs::exists(tmp / "svg" / "blk.0.ffn_norm.weight.svg"));
  CHECK(slurp(tmp / "svg" / "blk.0.ffn_norm.weight.svg").find("<svg") == 0);
  // The plan's four numbers, from an independent exact rounding (reference README).
  std::ifstream in(dir.parent_path().parent_path() / "reference/tl-mini/llama.cpp-reference.json");
  const auto ref =
      json::parse(in)["fake_quant"]["bf16-blk0-ffn_norm"]["tensors"]["blk.0.ffn_norm.weight"];
  CHECK(d["count"] == ref["count"]);
  CHECK(d["changed"] == ref["changed"]);
  for (const char* k : {"max_abs_diff", "mean_abs_diff", "max_rel_diff", "mean_rel_diff"}) {
    INFO(k);
    const double got = d[k], want = ref[k];
    CHECK(std::fabs(got - want) <= 1e-12 * std::fabs(want));
  }
}

TEST_CASE("stats: diff of files with different structure says what differs and fails") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  fq_test::temp_dir tmp;
  const auto out = tmp / "n.json";
  const auto r = fq_test::run_program({"diff", (dir / "tl-mini-f32.gguf").string(),
                                       (dir / "tl-mini-q8_0.gguf").string(), "--tensors",
                                       "blk.0.attn_q.weight", "--output", out.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("structure differs") != std::string::npos);
  CHECK(r.err.find("is F32 in A, Q8_0 in B") != std::string::npos);
  const auto j = parse(slurp(out));
  CHECK(j["structure_identical"] == false);
  CHECK(j["metadata_identical"] == false);
  std::size_t quantized = 0;  // every tensor llama-quantize turned into Q8_0 is a difference
  const auto q8 = fq::gguf::file::open((dir / "tl-mini-q8_0.gguf").string());
  for (const auto& t : q8.tensors()) quantized += t.type == fq::gguf::ggml_type::q8_0;
  CHECK(quantized > 20);
  CHECK(j["structure_differences"].size() == quantized);
  REQUIRE(j["tensors"].size() == 1);
  CHECK(j["tensors"][0]["type"] == "Q8_0");
  CHECK(j["tensors"][0]["cosine"].get<double>() > 0.9999);
  // A missing tensor is a structure difference too.
  const auto other = fq_test::run_program(
      {"diff", (dir / "tl-mini-f32.gguf").string(), (dir / "kq-f16.gguf").string(), "--json"});
  CHECK(other.status == 1);
  CHECK(other.err.find("structure differs") != std::string::npos);
  CHECK(other.out.find("only in A") != std::string::npos);
  // Usage errors.
  CHECK(fq_test::run_program({"diff", (dir / "kq-f16.gguf").string()}).status == 2);
}

TEST_CASE("stats: diff JSON is byte-identical for 1, 2 and 4 threads") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  std::string first;
  for (const char* t : {"1", "2", "4"}) {
    const auto r = fq_test::run_program({"diff", (dir / "kq-f16.gguf").string(),
                                         (dir / "kq-q4_k_m.gguf").string(), "--json", "-t", t});
    CHECK(r.status == 1);  // the types differ
    if (first.empty()) {
      first = r.out;
      const auto j = parse(first);
      CHECK(j["tensors"].size() > 10);
      for (const auto& t : j["tensors"]) CHECK(t["type"] != t["type_a"]);
    } else {
      CHECK(r.out == first);
    }
  }
}

TEST_CASE("stats: the SVG picture is one well-formed document per tensor") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  fq_test::temp_dir tmp;
  const auto r =
      fq_test::run_program({"diff", (dir / "kq-f16.gguf").string(), (dir / "kq-q4_0.gguf").string(),
                            "--tensors", "blk.1.*", "--svg", (tmp / "svg").string()});
  CHECK(r.status == 1);  // other types: a structure difference, reported and pictured anyway
  std::size_t pictures = 0;
  for (const auto& e : fq_test::fs::directory_iterator(tmp / "svg")) {
    const auto text = slurp(e.path());
    CHECK(text.rfind("<svg", 0) == 0);
    CHECK(text.find("</svg>") != std::string::npos);
    CHECK(text.find("<circle") != std::string::npos);           // relative difference points
    CHECK(text.find("fill=\"#ff7f0e\"") != std::string::npos);  // the after histogram
    std::size_t open = 0, close = 0;
    for (std::size_t p = text.find('<'); p != std::string::npos; p = text.find('<', p + 1)) ++open;
    for (std::size_t p = text.find('>'); p != std::string::npos; p = text.find('>', p + 1)) ++close;
    CHECK(open == close);
    ++pictures;
  }
  CHECK(pictures == 7);  // blk.1's 7 quantized matrices; its two norms are unchanged
}
