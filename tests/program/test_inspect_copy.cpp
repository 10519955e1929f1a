// SPDX-License-Identifier: MIT
// `fakequant inspect` and `fakequant copy`: output contract, exit statuses.
#include <fakequant/gguf.hpp>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {
std::filesystem::path sample(const fq_test::temp_dir& dir) {
  static const std::vector<float> w{0.5f, -1.0f, 2.0f, 4.0f};
  static const std::vector<std::string> toks(20, "tok");
  gg::builder b;
  b.set("general.architecture", gg::value::of("llama"));
  b.set("tokenizer.ggml.tokens", gg::value::string_array<std::string>(toks));
  b.add_tensor("blk.0.ffn_norm.weight", gg::ggml_type::f32, {4},
               gg::tensor_source::bytes(std::as_bytes(std::span(w))));
  const auto p = dir / "m.gguf";
  b.write(p);
  return p;
}
}  // namespace

TEST_CASE("cli inspect --json: version, alignment, complete metadata, tensors") {
  fq_test::temp_dir dir;
  const auto p = sample(dir);
  const auto r = fq_test::run_program({"inspect", p.string(), "--json"});
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["version"] == 3);
  CHECK(j["alignment"] == 32);
  CHECK(j["metadata"]["general.architecture"] == "llama");
  CHECK(j["metadata"]["tokenizer.ggml.tokens"].size() == 20);  // complete, not shortened
  REQUIRE(j["tensors"].size() == 1);
  const auto& t = j["tensors"][0];
  CHECK(t["name"] == "blk.0.ffn_norm.weight");
  CHECK(t["type"] == "F32");
  CHECK(t["shape"] == nlohmann::json::array({4}));
  CHECK(t["offset"] == 0);
  CHECK(t["bytes"] == 16);
}

TEST_CASE("cli inspect: text output shortens long arrays") {
  fq_test::temp_dir dir;
  const auto r = fq_test::run_program({"inspect", sample(dir).string()});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("(12 more)") != std::string::npos);
  CHECK(r.out.find("blk.0.ffn_norm.weight") != std::string::npos);
  CHECK(r.out.find("GGUF v3, alignment 32") != std::string::npos);
}

TEST_CASE("cli: usage errors exit 2 - bad files exit 1 with one line naming the file") {
  fq_test::temp_dir dir;
  CHECK(fq_test::run_program({}).status == 2);
  CHECK(fq_test::run_program({"frobnicate"}).status == 2);
  CHECK(fq_test::run_program({"inspect"}).status == 2);
  CHECK(fq_test::run_program({"copy", "a.gguf"}).status == 2);
  CHECK(fq_test::run_program({"inspect", "--help"}).status == 0);

  const auto missing = fq_test::run_program({"inspect", (dir / "nope.gguf").string()});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("nope.gguf: cannot open") != std::string::npos);

  const auto directory = fq_test::run_program({"inspect", dir.path().string()});
  CHECK(directory.status == 1);
  CHECK(directory.err.find("is a directory") != std::string::npos);

  fq_test::write_bytes(dir / "empty.gguf", "", 0);
  const auto empty = fq_test::run_program({"inspect", (dir / "empty.gguf").string()});
  CHECK(empty.status == 1);
  CHECK(empty.err.find("empty file") != std::string::npos);

  fq_test::write_bytes(dir / "text.gguf", "hello world\n", 12);
  const auto text = fq_test::run_program({"inspect", (dir / "text.gguf").string()});
  CHECK(text.status == 1);
  CHECK(text.err.find("not a GGUF file") != std::string::npos);
  for (const auto* r : {&missing, &directory, &empty, &text})
    CHECK(std::count(r->err.begin(), r->err.end(), '\n') == 1);
}

TEST_CASE("cli copy: byte-identical output - missing output folder is an error") {
  fq_test::temp_dir dir;
  const auto p = sample(dir);
  const auto r = fq_test::run_program({"copy", p.string(), (dir / "c.gguf").string()});
  CHECK(r.status == 0);
  CHECK(fq_test::read_bytes(p) == fq_test::read_bytes(dir / "c.gguf"));
  const auto bad = fq_test::run_program({"copy", p.string(), (dir / "no" / "c.gguf").string()});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("does not exist") != std::string::npos);
}
